"""The ONNX Runtime embedding backend: same vectors as sentence-transformers, exports made
once and atomically, unsupported models fall back to torch, backends never mix in an index,
and a question from the CLI loads neither torch nor Gradio."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from assistant.errors import IndexMismatchError
from assistant.settings import Settings
from index import embeddings, onnx_embedder, onnx_export
from index.embeddings import (
    OnnxEmbeddings,
    SentenceTransformerEmbeddings,
    load_embedder,
    resolve_model_path,
)
from index.onnx_embedder import content_hash, ensure_export
from index.onnx_export import UnsupportedModelError
from index.store import Index
from index.sync import sync
from tests.conftest import BBC, ROOT, SAMPLE

BUNDLED_DIR = Path(resolve_model_path("bundled:all-MiniLM-L6-v2"))


def _news_texts() -> list[str]:
    """Real news text: the sample article's paragraphs and (when present) BBC stories whole,
    so some are past the model's 256-piece limit and batches carry padding."""
    texts = [
        p.strip()
        for f in sorted(SAMPLE.glob("*.md"))
        for p in f.read_text(encoding="utf-8").split("\n\n")
        if p.strip()
    ]
    for topic in ("business", "politics", "sport", "tech", "entertainment"):
        texts += [f.read_text(encoding="utf-8") for f in sorted((BBC / topic).glob("*.txt"))[:6]]
    return texts


def _embedder(tmp_path: Path, backend: str, **extra: object) -> object:
    return load_embedder(Settings(home=tmp_path / "home", embedding_backend=backend, **extra))


@pytest.mark.integration
def test_onnx_fp32_matches_sentence_transformers_on_news_text(tmp_path: Path) -> None:
    torch_e = _embedder(tmp_path, "torch")
    onnx_e = _embedder(tmp_path, "onnx")
    int8_e = _embedder(tmp_path, "onnx-int8")
    assert isinstance(torch_e, SentenceTransformerEmbeddings)
    assert isinstance(onnx_e, OnnxEmbeddings) and onnx_e.backend == "onnx"
    assert isinstance(int8_e, OnnxEmbeddings) and int8_e.backend == "onnx-int8"
    texts = _news_texts()
    assert len(texts) >= 10
    reference = np.array(torch_e.embed_documents(texts))
    fp32 = np.array(onnx_e.embed_documents(texts))
    int8 = np.array(int8_e.embed_documents(texts))
    assert fp32.shape == reference.shape
    assert (fp32 * reference).sum(axis=1).min() >= 0.9999
    assert np.allclose(np.linalg.norm(fp32, axis=1), 1.0, atol=1e-5)
    # int8 is an approximation; measured ~0.99 on news text. A broken graph scores far lower.
    assert (int8 * reference).sum(axis=1).mean() >= 0.98
    question = "What did Bessent threaten?"
    assert float(np.dot(onnx_e.embed_query(question), torch_e.embed_query(question))) >= 0.9999
    # The chunker measures text with the export's tokenizer: it must count exactly as before.
    assert onnx_e.max_tokens == torch_e.max_tokens
    assert onnx_e.count_tokens(texts) == torch_e.count_tokens(texts)
    assert all(onnx_e.token_spans(t) == torch_e.token_spans(t) for t in texts[:12])


@pytest.mark.integration
def test_the_fp32_export_is_the_fused_graph(tmp_path: Path) -> None:
    """Issue 15: ONNX Runtime's transformer optimizer fuses attention, embedding and skip
    LayerNorms and GELU into the served fp32 graph (the vectors stay those of
    sentence-transformers: the test above); the int8 file stays the plain graph quantised."""
    import onnx

    onnx_e = _embedder(tmp_path, "onnx")
    assert isinstance(onnx_e, OnnxEmbeddings)
    manifest = onnx_embedder.read_manifest(onnx_e.directory)
    assert manifest is not None and manifest["fused"].get("Attention", 0) >= 6
    ops = {n.op_type for n in onnx.load(str(onnx_e.directory / onnx_export.FP32_FILE)).graph.node}
    assert {"Attention", "EmbedLayerNormalization", "SkipLayerNormalization"} <= ops
    assert "Softmax" not in ops  # no unfused attention left
    assert manifest["check"]["fp32_min_cosine"] >= 0.9999
    assert not (onnx_e.directory / "model.plain.onnx").exists()


@pytest.mark.integration
@pytest.mark.slow
def test_a_fused_graph_that_differs_is_replaced_by_the_plain_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fusion that changes the vectors (here: the int8 graph passed off as the fused fp32
    one) fails the check against sentence-transformers; the export then serves the plain graph
    instead of refusing the model or serving the wrong vectors."""

    def bad_fuse(src: Path, dst: Path, config: object) -> dict[str, int]:
        shutil.copyfile(src.with_name(onnx_export.INT8_FILE), dst)
        return {"Attention": 6}

    monkeypatch.setattr(onnx_export, "_fuse", bad_fuse)
    directory, manifest = ensure_export(tmp_path / "models", str(BUNDLED_DIR))
    assert manifest["fused"] == {}
    assert manifest["check"]["fp32_min_cosine"] >= 0.9999
    assert not (directory / "model.plain.onnx").exists()


class _GatedSession:
    """A stand-in for onnxruntime.InferenceSession whose creation waits for a signal."""

    gate = threading.Event()
    fail: Exception | None = None
    options: object = None

    def __init__(self, path: str, options: object, providers: list[str]) -> None:
        _GatedSession.options = options
        assert self.gate.wait(30)
        if self.fail is not None:
            raise self.fail


def test_the_onnx_session_is_made_on_a_thread_and_its_error_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15 (cold start): creating the runner does not wait for ONNX Runtime to read and
    prepare the graph (a question imports LangChain and Chroma meanwhile); the first use of
    the session waits for it, and a failure to create it is raised there, not swallowed. Idle
    pool threads do not spin."""
    import onnxruntime

    export = tmp_path / "export"
    export.mkdir()
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")).save(str(export / "tokenizer.json"))
    np.savez(export / "head.npz")
    manifest = {
        "inputs": ["input_ids", "attention_mask"],
        "pad_id": 0,
        "pad_type_id": 0,
        "max_seq_length": 16,
        "dimension": 4,
        "head": [],
    }
    monkeypatch.setattr(onnxruntime, "InferenceSession", _GatedSession)
    for fail in (None, RuntimeError("protobuf parsing failed")):
        monkeypatch.setattr(_GatedSession, "gate", threading.Event())
        monkeypatch.setattr(_GatedSession, "fail", fail)
        runner = onnx_embedder.OnnxRunner(export, manifest, int8=False)  # returns at once
        assert not runner._session.done()
        _GatedSession.gate.set()
        if fail is None:
            assert isinstance(runner.session, _GatedSession)
        else:
            with pytest.raises(RuntimeError, match="protobuf"):
                runner.session  # noqa: B018
    options = _GatedSession.options
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"  # type: ignore[attr-defined]


def _model_copy(tmp_path: Path, pooling: dict[str, object] | None = None) -> Path:
    """The bundled model's files in a folder of its own (weights linked, configs copied)."""
    target = tmp_path / "model-copy"
    shutil.copytree(
        BUNDLED_DIR, target, symlinks=True, ignore=shutil.ignore_patterns("*.safetensors")
    )
    (target / "model.safetensors").symlink_to(BUNDLED_DIR / "model.safetensors")
    if pooling is not None:
        (target / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    return target


@pytest.mark.integration
@pytest.mark.slow
def test_pooling_is_read_from_the_model_not_assumed(tmp_path: Path) -> None:
    """CLS + max pooling (768 dims): the export reproduces it, so it read the pooling config."""
    model = _model_copy(
        tmp_path,
        {
            "word_embedding_dimension": 384,
            "pooling_mode_cls_token": True,
            "pooling_mode_mean_tokens": False,
            "pooling_mode_max_tokens": True,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    settings = Settings(home=tmp_path / "home", embedding_model=str(model))
    onnx_e = load_embedder(settings.model_copy(update={"embedding_backend": "onnx"}))
    torch_e = load_embedder(settings.model_copy(update={"embedding_backend": "torch"}))
    assert isinstance(onnx_e, OnnxEmbeddings)
    texts = _news_texts()[:8]
    got, want = np.array(onnx_e.embed_documents(texts)), np.array(torch_e.embed_documents(texts))
    assert got.shape == (8, 768)
    assert (got * want).sum(axis=1).min() >= 0.9999


@pytest.mark.integration
def test_unsupported_model_falls_back_to_torch_with_the_reason_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _model_copy(tmp_path, {"word_embedding_dimension": 384, "pooling_mode": "weightedmean"})
    settings = Settings(
        home=tmp_path / "home", embedding_model=str(model), embedding_backend="onnx"
    )
    with caplog.at_level(logging.WARNING, logger="index.embeddings"):
        embedder = load_embedder(settings)
    assert isinstance(embedder, SentenceTransformerEmbeddings) and embedder.backend == "torch"
    assert "weightedmean" in caplog.text and "sentence-transformers" in caplog.text
    # Remembered: the next process falls back at once, without loading torch to fail again.
    (failed,) = settings.models_dir.glob("*.failed")
    assert "weightedmean" in failed.read_text(encoding="utf-8")
    assert len(embedder.embed_documents(["Shares fell."])[0]) == 384


def test_content_hash_follows_the_files_not_their_names(tmp_path: Path) -> None:
    model, cache = tmp_path / "m", tmp_path / "cache"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"a" * 1000)
    (model / "config.json").write_text("{}", encoding="utf-8")
    first = content_hash(model, cache)
    assert content_hash(model, cache) == first  # remembered by (path, size, mtime)
    os.utime(model / "config.json", ns=(1, 1))
    assert content_hash(model, cache) == first  # touched, same bytes: same export
    (model / "weights.bin").write_bytes(b"b" * 1000)
    assert content_hash(model, cache) != first  # new weights: a new export


def _fake_export(calls: list[str], gate: threading.Barrier | None = None):  # type: ignore[no-untyped-def]
    def export(model_path: str, out_dir: Path, *, model_hash: str) -> dict[str, object]:
        calls.append(model_path)
        if gate is not None:
            gate.wait(timeout=30)  # both exporters are mid-export at once
        for name in (onnx_export.FP32_FILE, onnx_export.INT8_FILE, onnx_export.TOKENIZER_FILE):
            (out_dir / name).write_bytes(os.urandom(4096))
        manifest = {
            "format": onnx_export.EXPORT_FORMAT,
            "model_hash": model_hash,
            "by": out_dir.name,
        }
        (out_dir / onnx_export.MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
        return manifest

    return export


def test_export_happens_once_and_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 100)
    calls: list[str] = []
    monkeypatch.setattr(onnx_export, "export", _fake_export(calls))
    first, _ = ensure_export(tmp_path / "models", str(model))
    second, _ = ensure_export(tmp_path / "models", str(model))
    assert first == second and len(calls) == 1
    assert not list((tmp_path / "models").glob(".export-*"))


def test_two_exports_at_once_leave_one_whole_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both exporters finish; one rename wins, the other uses the winner's files; no temp
    directory or half-written export is left behind."""
    model = tmp_path / "m"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 100)
    calls: list[str] = []
    monkeypatch.setattr(onnx_export, "export", _fake_export(calls, threading.Barrier(2)))
    results: list[tuple[Path, dict[str, object]]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(ensure_export(tmp_path / "models", str(model)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(calls) == 2
    (a_dir, a), (b_dir, b) = results
    assert a_dir == b_dir and a["by"] == b["by"]  # both serve the one that landed
    exports = [p for p in (tmp_path / "models").iterdir() if p.is_dir()]
    assert exports == [a_dir]
    assert onnx_embedder.read_manifest(a_dir) is not None


def test_a_failed_export_is_not_half_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"w" * 100)

    def broken(model_path: str, out_dir: Path, *, model_hash: str) -> dict[str, object]:
        (out_dir / onnx_export.FP32_FILE).write_bytes(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(onnx_export, "export", broken)
    with pytest.raises(UnsupportedModelError, match="No space left"):
        ensure_export(tmp_path / "models", str(model))
    assert list((tmp_path / "models").iterdir()) == [tmp_path / "models" / "hashes.json"]


@pytest.mark.integration
def test_switching_backend_reembeds_into_a_new_generation(tmp_path: Path) -> None:
    torch_settings = Settings(home=tmp_path / "home", embedding_backend="torch")
    int8_settings = torch_settings.model_copy(update={"embedding_backend": "onnx-int8"})
    sync(torch_settings, [str(SAMPLE)], show_bar=False)
    first = Index.open(torch_settings)
    assert first is not None and first.status().embedding_backend == "torch"
    first.close()
    with pytest.raises(IndexMismatchError, match="onnx-int8"):
        Index.open(int8_settings)
    report = sync(int8_settings, show_bar=False)
    assert report.rebuilt and report.chunks_embedded > 0
    second = Index.open(int8_settings)
    assert second is not None and second.generation != first.generation
    assert second.status().embedding_backend == "onnx-int8"
    second.close()


_ASK_PROBE = """
import json, sys
from assistant.cli import main
code = main(["ask", "What did Bessent threaten?", "--json"])
print(json.dumps({"code": code, "torch": "torch" in sys.modules, "gradio": "gradio" in sys.modules,
    "transformers": "transformers" in sys.modules,
    "sentence_transformers": "sentence_transformers" in sys.modules,
    "spacy": "spacy" in sys.modules, "index.sync": "index.sync" in sys.modules,
    "trafilatura": "trafilatura" in sys.modules}), file=sys.stderr)
"""


@pytest.mark.integration
def test_a_question_from_the_cli_imports_neither_torch_nor_gradio(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", embedding_backend="onnx-int8")
    sync(settings, [str(SAMPLE)], show_bar=False)
    env = {
        **os.environ,
        "ASSISTANT_HOME": str(settings.home),
        "ASSISTANT_EMBEDDING_BACKEND": "onnx-int8",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", _ASK_PROBE], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["citations"], answer
    loaded = json.loads(done.stderr.strip().splitlines()[-1])
    assert loaded == {
        "code": 0,
        "torch": False,
        "gradio": False,
        "transformers": False,
        "sentence_transformers": False,
        # Issue 15 (cold start): the default extractive answer needs no spaCy, and a question
        # needs none of the article readers (index.sync -> trafilatura, lxml).
        "spacy": False,
        "index.sync": False,
        "trafilatura": False,
    }


@pytest.mark.parametrize(("setting", "expected"), [(None, None), ("cuda", "cuda")])
def test_torch_backend_lets_sentence_transformers_pick_the_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, expected: str | None
) -> None:
    """Issue 10: no hard-coded CPU; unset, sentence-transformers picks (a GPU when present)."""
    import sentence_transformers

    seen: dict[str, object] = {}

    class Recorder:
        def __init__(self, path: str, **kwargs: object) -> None:
            seen.update(kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Recorder)
    monkeypatch.setattr(embeddings, "_CACHE", {})  # a fresh embedder, not a cached real one
    settings = Settings(home=tmp_path / "home", embedding_backend="torch", embedding_device=setting)
    embedder = load_embedder(settings)
    assert isinstance(embedder, SentenceTransformerEmbeddings)
    assert embedder._model is not None
    assert seen["device"] == expected


def test_export_quiets_onnxruntime_without_touching_the_root_logger(caplog) -> None:  # type: ignore[no-untyped-def]
    """The exporter silences ONNX Runtime's optimizer chatter, but the root logger keeps its
    level: another thread's records still reach the user while an export runs."""
    import logging

    from onnxruntime.transformers.optimizer import optimize_model  # noqa: F401  (its loggers)

    from index.onnx_export import _quiet_onnxruntime

    root = logging.getLogger()
    before = root.level
    chatty = logging.getLogger("fusion_attention")  # how the optimizer's module logs
    with caplog.at_level(logging.INFO), _quiet_onnxruntime():
        chatty.info("fused 6 attention nodes")
        logging.getLogger("assistant.elsewhere").info("still heard")
    assert "still heard" in caplog.text
    assert "fused 6 attention nodes" not in caplog.text
    assert chatty.level != logging.ERROR  # restored
    assert root.level == before


# --- speed: batches planned by cost, the answerer's sentence vectors remembered --------------
def _planned_cost(lengths: list[int], batches: list[tuple[int, int]]) -> int:
    return sum(onnx_embedder.RUN_COST_PIECES + (b - a) * lengths[b - 1] for a, b in batches)


@pytest.mark.parametrize(
    "lengths",
    [
        [],
        [7],
        [20] * 70,
        [9, 11, 14, 18, 22, 25, 31, 38, 44, 52, 66, 80],  # a dozen answer sentences
        sorted(np.random.default_rng(3).integers(3, 257, 200).tolist()),
    ],
)
def test_batches_cover_every_text_once_and_cost_no_more_than_fixed_slices(
    lengths: list[int],
) -> None:
    batch_size = 32
    batches = onnx_embedder.plan_batches(lengths, batch_size)
    assert [i for a, b in batches for i in range(a, b)] == list(range(len(lengths)))
    assert all(0 < b - a <= batch_size for a, b in batches)
    fixed = [(a, min(a + batch_size, len(lengths))) for a in range(0, len(lengths), batch_size)]
    assert _planned_cost(lengths, batches) <= _planned_cost(lengths, fixed)
    if len(set(lengths)) == 1:  # nothing to save: as few batches as fixed slices
        assert len(batches) == len(fixed)


def test_a_dozen_sentences_of_different_lengths_are_not_padded_to_the_longest() -> None:
    lengths = [9, 11, 14, 18, 22, 25, 31, 38, 44, 52, 66, 80]
    batches = onnx_embedder.plan_batches(lengths, 32)
    assert len(batches) > 1
    padded = sum((b - a) * lengths[b - 1] for a, b in batches)
    assert padded < 0.75 * len(lengths) * max(lengths)


@pytest.mark.integration
def test_planned_batches_give_the_vectors_of_one_text_at_a_time(tmp_path: Path) -> None:
    """The split changes which texts share a batch, never a text's vector: padding is masked,
    so each text's vector equals the one it gets alone (the query path) up to rounding."""
    onnx_e = _embedder(tmp_path, "onnx")
    assert isinstance(onnx_e, OnnxEmbeddings)
    texts = [t[: 40 + 37 * i] for i, t in enumerate(_news_texts()[:14])] + ["Who won?"]
    together = np.array(onnx_e.embed_documents(texts))
    alone = np.array([onnx_e._runner.embed([t])[0] for t in texts])
    assert (together * alone).sum(axis=1).min() >= 0.99999
    assert np.abs(together - alone).max() < 1e-5
    question = "What did Bessent threaten?"
    assert np.array_equal(onnx_e.embed_query(question), onnx_e._runner.embed([question])[0])


class _CountingEmbeddings(embeddings.CachedQueryEmbeddings):
    name = "counting"
    max_tokens = 254
    backend = "fake"

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[str] = []

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return []

    def _encode(self, texts: object) -> list[list[float]]:
        texts = list(texts)  # type: ignore[call-overload]
        self.encoded += texts
        return [[float(len(t)), 1.0 / (1 + len(t)), 0.25] for t in texts]


def test_sentence_vectors_are_remembered_in_a_bounded_lru(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    e = _CountingEmbeddings()
    monkeypatch.setattr(e, "passage_cache_size", 3)  # the knob a measuring script turns
    first = e.embed_documents_cached(["a", "bb", "a"])
    assert first == e.embed_documents(["a", "bb", "a"])
    assert e.encoded[:2] == ["a", "bb"]  # a repeated text is embedded once
    e.encoded.clear()
    assert e.embed_documents_cached(["bb", "ccc"]) == e.embed_documents(["bb", "ccc"])
    assert e.encoded == ["ccc", "bb", "ccc"]  # only "ccc" was new to the cache
    e.encoded.clear()
    e.embed_documents_cached(["dddd"])  # evicts the least recently used: "a"
    e.embed_documents_cached(["bb", "ccc", "dddd", "a"])
    assert e.encoded == ["dddd", "a"]
    e.clear_query_cache()  # a timed call forgets passages too
    e.encoded.clear()
    e.embed_documents_cached(["bb"])
    assert e.encoded == ["bb"]
