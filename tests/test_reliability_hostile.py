"""Hostile and broken input: a corpus of bad files, each reported with its path and reason
while the rest indexes; and property-based tests of citation assembly (every ``[n]`` an
answer shows resolves to a citation of a retrieved passage)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from assistant.api import answer, list_articles, open_index
from assistant.chain import build_chain, defang_quotes
from assistant.extractive import ExtractiveAnswerer
from assistant.retrieval import HybridRetriever
from assistant.settings import Settings
from index.embeddings import FakeTokenizingEmbeddings
from index.sync import sync

from .reliability_support import ROOT, child_env

BAD_INPUTS = Path(__file__).parent / "bad_inputs"
HOSTILE = Path(__file__).parent / "hostile"
MB = 1024 * 1024
#: Every marker form the LLM path understands ([3], [1, 2], [2-4]); the UI links [n].
MARKER = re.compile(r"\[\s*([0-9]+(?:\s*[,;–-]\s*[0-9]+)*)\s*\]")

#: name in the test folder -> a piece of the reason it must be reported with (None: indexed).
EXPECTED: dict[str, str | None] = {
    # tests/bad_inputs (the loaders' corpus)
    "bad_frontmatter.md": "front matter",
    "binary_png.txt": "binary file",
    "empty.txt": "empty file",
    "good.md": None,
    "invalid_utf8.txt": None,  # decoded by detection
    "nul_bytes.txt": "binary file",
    "one_broken_line.jsonl": "line 4: invalid JSON",  # lines 1, 3 and 6 are indexed
    "script_pixel.html": None,
    "utf16_bom.txt": None,
    "whitespace_only.txt": "empty file",
    "wrong_types.json": "record 2: text is a number",  # records 1 and 5 are indexed
    # tests/hostile
    "control_chars.txt": None,
    "deep_json.jsonl": "line 2: invalid JSON: nested too deeply",  # line 1 is indexed
    "deep_nesting.html": "HTML",
    "scripts_only.html": "no article text",
    "truncated.json": "invalid JSON",
    "wrong_top_level.json": "expected a JSON object",
    "yaml_bomb.md": None,
    # generated here
    "huge.txt": "over the 20 MB limit",
    "loop_a.txt": "symbolic links",
    "loop_b.txt": "symbolic links",
    "dangling.txt": "No such file or directory",
    "pipe.txt": "not a regular file",
    "zero.txt": "not a regular file",
    "new\nline.txt": None,
    "naïve ☃ 日本語 — ‮txt.exe.md": None,
    "latin\udce9name.txt": "file name is not valid UTF-8",
}
GOOD_TITLES = {
    "Rail strike called off after late-night talks",
    "Café prices rise",
    "Grüße aus Köln",
    "Harbour bridge reopens after repairs",
    "Line one",
    "Line three",
    "Line six",
    "Bridge toll scrapped",
    "Tram fares frozen",
    "Snowman report",
    "Newline name",
}


def build_hostile_folder(folder: Path) -> Path:
    """The kept corpus plus what cannot be kept in git, in one folder."""
    folder.mkdir(parents=True)
    for source in (BAD_INPUTS, HOSTILE):
        for path in source.iterdir():
            if path.name != "README.md":
                shutil.copyfile(path, folder / path.name)
    with (folder / "huge.txt").open("wb") as fh:  # 50 MB on paper, nothing on disk
        fh.truncate(50 * MB)
    (folder / "loop_a.txt").symlink_to("loop_b.txt")
    (folder / "loop_b.txt").symlink_to("loop_a.txt")
    (folder / "dangling.txt").symlink_to("gone.txt")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to("..")  # a folder loop
    (folder / "sub" / "again").symlink_to(folder)
    os.mkfifo(folder / "pipe.txt")  # reading it would block forever
    (folder / "zero.txt").symlink_to("/dev/zero")  # reading it would never end
    (folder / "new\nline.txt").write_text(
        "Newline name\n\nA file whose name holds a newline still tells of the lighthouse.\n"
    )
    (folder / "naïve ☃ 日本語 — ‮txt.exe.md").write_text(
        "# Snowman report\n\nThe snowman stood by the lighthouse all week.\n"
    )
    latin = Path(os.fsdecode(os.fsencode(folder) + b"/latin\xe9name.txt"))
    latin.write_bytes(b"Latin name\n\nThis file name is Latin-1, which no catalog can hold.\n")
    (folder / "notes.pdf").write_bytes(b"%PDF-1.4 not an article type")  # skipped in folders
    return folder


def check_report(report: dict, folder: Path) -> None:
    failed: dict[str, list[str]] = {}
    for item in report["failed"]:
        path = item["path"]
        assert path.startswith(str(folder)), path
        assert item["error"].strip(), f"{path}: no reason given"
        failed.setdefault(Path(path).name, []).append(item["error"])
    for name, reason in EXPECTED.items():
        if reason is None:
            assert name not in failed, f"{name!r} was refused: {failed.get(name)}"
        else:
            assert name in failed, f"{name!r} was not reported"
            assert any(reason in r for r in failed[name]), f"{name!r}: {failed[name]}"
    unexpected = set(failed) - set(EXPECTED)
    assert not unexpected, f"reported but not expected: {unexpected}"


@pytest.mark.timeout(300)
def test_hostile_corpus_is_reported_file_by_file_and_the_rest_indexed(
    fake_settings: Settings, tmp_path: Path
) -> None:
    folder = build_hostile_folder(tmp_path / "hostile")
    report = sync(fake_settings, [str(folder)], show_bar=False).to_dict()
    check_report(report, folder)
    titles = {a.title for a in list_articles(fake_settings)}
    assert titles >= GOOD_TITLES, GOOD_TITLES - titles
    # Control characters stay in the text (it is quoted by offsets) and the index answers.
    result = answer("Which toll did the council scrap?", settings=fake_settings)
    assert result.citations
    # Nothing changed: a second sync embeds nothing and still reports every file that failed
    # whole (files that loaded with a bad record are unchanged, so not read again).
    again = sync(fake_settings, [str(folder)], show_bar=False).to_dict()
    assert again["chunks_embedded"] == 0 and again["added"] == 0
    partial = {"one_broken_line.jsonl", "wrong_types.json", "deep_json.jsonl"}
    whole = {Path(f["path"]).name for f in report["failed"]} - partial
    assert {Path(f["path"]).name for f in again["failed"]} == whole
    tried = len(EXPECTED) + 1  # the .pdf beside them
    print(
        f"\nhostile corpus: {tried} bad or odd files tried, {len(report['failed'])} reports, "
        f"{report['added']} articles indexed from the rest"
    )


@pytest.mark.timeout(300)
def test_cli_reports_hostile_files_one_line_each(tmp_path: Path) -> None:
    """The CLI run: exit 1, one escaped line per problem on stderr (a newline or escape code
    in a file name cannot forge a line or drive the terminal), the JSON report, no traceback."""
    folder = build_hostile_folder(tmp_path / "hostile")
    (folder / "evil\x1b]0;owned\x07\nerror: forged.txt").write_bytes(b"\x00\x01" * 50)
    home = tmp_path / "home"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "assistant.cli",
            "index",
            str(folder),
            "--json",
            "--home",
            str(home),
            "--embedding-model",
            "fake",
        ],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert any("forged" in f["path"] for f in report["failed"])
    # Besides progress lines (stderr is a pipe here), one line per failure or duplicate.
    lines = [x for x in proc.stderr.strip().splitlines() if not x.startswith("index: ")]
    assert len(lines) == len(report["failed"]) + len(report["duplicates"]), lines
    assert all(line.startswith(("error: ", "duplicate: ")) for line in lines), lines
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert any("\\x1b]0;owned\\x07\\nerror: forged.txt" in line for line in lines), lines


def test_unsupported_file_named_directly_is_reported(
    fake_settings: Settings, tmp_path: Path
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    report = sync(fake_settings, [str(pdf)], show_bar=False)
    assert [(f.path, "unsupported file type" in f.error) for f in report.failed] == [
        (str(pdf), True)
    ]


# --- citation assembly, property-based ------------------------------------------------------
WORDS = [
    "harbour",
    "council",
    "budget",
    "[7]",
    "[1]",
    "[2, 3]",
    "[4-5]",
    "Bessent",
    "tariffs",
    "![x](https://evil.example/p.png)",
    "50%",
    "Monday",
    "said",
    "the",
    "rates",
    "(3)",
]

sentence = st.lists(st.sampled_from(WORDS), min_size=3, max_size=14).map(
    lambda ws: " ".join(ws).capitalize() + "."
)
article = st.lists(sentence, min_size=1, max_size=12)


def documents(sentences: list[str], per_chunk: int) -> tuple[str, list[Document]]:
    """The article text and its chunks as the retriever hands them to the answerer."""
    text = " ".join(sentences)
    docs: list[Document] = []
    start = 0
    for i in range(0, len(sentences), per_chunk):
        piece = " ".join(sentences[i : i + per_chunk])
        at = text.index(piece, start)
        end = at + len(piece)
        docs.append(
            Document(
                page_content=piece,
                metadata={
                    "chunk_id": f"a1:{len(docs)}",
                    "article_id": "a1",
                    "title": "Harbour news",
                    "source": "Gazette",
                    "published": "2025-01-02",
                    "url": None,
                    "start": at,
                    "end": end,
                    "score": 1.0 / (1 + len(docs)),
                    "context_before": text[max(0, at - 400) : at],
                },
            )
        )
        start = end
    return text, docs


def assert_markers_resolve(text: str, numbers: set[int]) -> None:
    for match in MARKER.finditer(text):
        for n in re.findall(r"[0-9]+", match[1]):
            assert int(n) in numbers, f"[{n}] in {text!r} resolves to no citation"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sentences=article,
    per_chunk=st.integers(1, 4),
    question=st.lists(st.sampled_from(WORDS[:10]), min_size=1, max_size=5).map(" ".join),
)
def test_every_marker_of_an_extractive_answer_resolves(
    sentences: list[str], per_chunk: int, question: str
) -> None:
    """Whatever the articles say (fake markers included), every [n] in the answer text is a
    citation, citations are numbered 1..k, and each quotes its article exactly."""
    text, docs = documents(sentences, per_chunk)
    answerer = ExtractiveAnswerer(FakeTokenizingEmbeddings(), _uniform, threshold=-10.0)
    body, citations, answered = answerer.answer(question + "?", docs)
    body = defang_quotes(body, citations)  # as the chain does
    numbers = {c.n for c in citations}
    assert [c.n for c in citations] == list(range(1, len(citations) + 1))
    assert_markers_resolve(body, numbers)
    chunk_ids = {d.metadata["chunk_id"] for d in docs}
    for c in citations:
        assert c.chunk_id in chunk_ids
        assert text[c.start : c.end] == c.quote
    if answered:
        assert {int(n) for m in MARKER.finditer(body) for n in re.findall(r"[0-9]+", m[1])} == (
            numbers
        )


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("small-index")
    docs = root / "docs"
    docs.mkdir()
    for i, (title, body) in enumerate(
        [
            (
                "Harbour plan approved",
                "The council approved the harbour plan [7] on Monday. "
                "It will cost 4 million pounds.",
            ),
            (
                "Tariff threat",
                "Bessent said everything is on the table, including tariffs. "
                "Talks resume on Friday.",
            ),
            ("Rates on hold", "The bank kept rates at 4.5% [2, 3]. Economists expected a cut."),
            ("Storm warning", "A storm will reach the coast on Sunday. Ferries are cancelled."),
        ]
    ):
        (docs / f"{i}.txt").write_text(f"{title}\n\n{body}\n")
    settings = Settings(home=root / "home", embedding_model="fake")
    sync(settings, [str(docs)], show_bar=False)
    return settings


reply = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "The plan was approved",
                "Rates held",
                "Bessent threatened tariffs",
                ".",
                " ",
                "\n",
                "![pixel](https://evil.example/x.png?q=)",
                "**bold**",
            ]
        ),
        st.integers(-3, 12).map(lambda n: f" [{n}]"),
        st.tuples(st.integers(0, 9), st.integers(0, 60)).map(lambda t: f"[{t[0]}-{t[1]}]"),
        st.tuples(st.integers(0, 9), st.integers(0, 9)).map(lambda t: f"[{t[0]}, {t[1]}]"),
        st.text(alphabet="[]0123456789,;- ", max_size=8),
    ),
    max_size=12,
).map("".join)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    text=reply,
    question=st.sampled_from(
        ["What was approved?", "What did Bessent say?", "Where are rates?", "Storm?"]
    ),
)
def test_llm_answers_cite_only_retrieved_passages(
    small_index: Settings, text: str, question: str
) -> None:
    """Through the whole chain with a chat model replying anything: the final text's markers
    all resolve, and every citation is one of the passages retrieved for this question."""
    index = open_index(small_index)
    chain = build_chain(index, k=3, llm=GenericFakeChatModel(messages=iter([text or "x"])))
    result = chain.invoke({"question": question, "history": []}).answer
    assert result is not None
    assert_markers_resolve(result.text, {c.n for c in result.citations})
    retrieved = HybridRetriever(index=index, k=3).invoke(question)  # what the chain was given
    for c in result.citations:
        assert 1 <= c.n <= len(retrieved)
        assert retrieved[c.n - 1].metadata["chunk_id"] == c.chunk_id


def _uniform(question: str) -> dict[str, float]:
    """Every question term weighs 1."""
    return {}
