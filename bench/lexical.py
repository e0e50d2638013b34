"""Lexical index candidates side by side: SQLite FTS5 (ours), tantivy, and bm25s (the old one).

For each corpus size: building the index, a one-article change (one article replaced by a new
one, as a sync does it, made durable), query latency p50/p95 over the dev questions, sentence
queries and a 200-word paste; and, on the real corpora, lexical-only retrieval quality of each
engine and tokenizer: evidence recall@5 and MRR@10 on the BBC dev questions (the passage holds
the evidence, as ``assistant eval`` scores it) and gold-article recall@5 / MRR@10 on RealTime
QA's 206 questions with a gold article. Chunks are the real chunker's; nothing is embedded.

    PYTHONPATH=$PWD nice .venv/bin/python bench/lexical.py --scale 1 10 --engines fts5 bm25s \
        tantivy --quality
    # the candidate stage's share against exhaustive bm25(): quality and latency at 10x
    PYTHONPATH=$PWD nice .venv/bin/python bench/lexical.py --pruning 0.01 0.02 0.05 0.1 0.2

tantivy and bm25s (the baseline) are not project dependencies: install them with
``pip install --target DIR tantivy bm25s`` and pass ``--extra-path DIR``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import pickle
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

BBC = Path("/work/shared/eval/bbc")
RTQA = Path("/work/shared/eval/realtimeqa")
Doc = tuple[str, str, list[tuple[str, str, int, int]]]  # origin, title, [(chunk id, text, a, b)]


# --- corpora ---------------------------------------------------------------------------------
def _chunker() -> Any:
    from assistant.settings import Settings
    from index.chunking import Chunker
    from index.embeddings import load_embedder

    settings = Settings()
    return Chunker(load_embedder(settings), settings.chunk_tokens)


def _docs(articles: list[Any], cache: Path) -> list[Doc]:
    if cache.exists():
        return [(o, t, [tuple(c) for c in cs]) for o, t, cs in json.loads(cache.read_text())]
    chunker = _chunker()
    out: list[Doc] = []
    for art in articles:
        chunks = chunker.split(art)
        out.append((art.origin, art.title, [(c.id, c.text, c.start, c.end) for c in chunks]))
    cache.write_text(json.dumps(out))
    return out


def bbc_docs(cache_dir: Path) -> list[Doc]:
    from index.loaders import iter_article_files, load_file

    arts = []
    for path in iter_article_files(BBC):
        if path.name.upper() != "README.TXT" and path.suffix == ".txt":
            arts.extend(load_file(path, max_bytes=10**7).articles)
    return _docs(arts, cache_dir / "bbc.json")


def synthetic_docs(cache_dir: Path, n: int, seed: int = 0) -> list[Doc]:
    """``n`` new articles made of real BBC chunks: each copies a real article's chunk count,
    takes a real headline and fills every slot with a random real chunk. Chunk texts keep the
    real size and vocabulary without running the chunker over a 10x corpus (slow on 2 cores)."""
    bbc = bbc_docs(cache_dir)
    pool = [c[1] for d in bbc for c in d[2]]
    rng = random.Random(seed)
    out: list[Doc] = []
    for i in range(n):
        _, title, shape = rng.choice(bbc)
        chunks = [rng.choice(pool) for _ in shape]
        out.append(
            (
                f"synth/{seed}/{i:06d}.txt",
                title,
                [(f"s{i}:{k}", t, 0, len(t)) for k, t in enumerate(chunks)],
            )
        )
    return out


def rtqa_docs(cache_dir: Path, words: int = 95) -> list[Doc]:
    """RealTime QA's 3,786 articles, sentences packed up to ``words`` words a chunk (about the
    chunker's 128 word pieces; the real sentence splitter and chunker over 5.7M words take
    about 15 minutes on 2 cores, so sentences here end at . ! ? or a line break)."""
    out: list[Doc] = []
    with gzip.open(RTQA / "articles.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            text = (row.get("text") or "").strip()
            if not text:
                continue
            chunks, start, used, prev_end = [], None, 0, 0
            for m in re.finditer(r"[^.!?\n]+[.!?]*", text):
                a, b = m.span()
                count = len(text[a:b].split())
                if start is not None and used + count > words:
                    chunks.append((start, prev_end))
                    start, used = None, 0
                start = a if start is None else start
                used += count
                prev_end = b
            if start is not None:
                chunks.append((start, prev_end))
            doc = row["doc_id"]
            out.append(
                (
                    doc,
                    row.get("title") or "",
                    [(f"{doc}:{k}", text[a:b], a, b) for k, (a, b) in enumerate(chunks)],
                )
            )
    return out


# --- tokenizers ------------------------------------------------------------------------------
_OLD_TOKEN = re.compile(r"\w+(?:&\w+)*", re.UNICODE)


def old_tokenize(text: str) -> list[str]:
    """The tokenizer of the bm25s index (TOKENIZER_VERSION 3): a hand-made suffix fold."""
    from index.lexical import _STOPWORDS

    def stem(token: str) -> str:
        if token.isdigit() or len(token) <= 4:
            return token
        for suffix in ("ing", "ed"):
            if token.endswith(suffix) and len(token) - len(suffix) >= 4:
                token = token[: -len(suffix)]
                break
        else:
            if token.endswith("s") and not token.endswith("ss"):
                token = token[:-1]
        return token[:-1] if token.endswith("e") and len(token) > 4 else token

    return [stem(t) for t in _OLD_TOKEN.findall(text.lower()) if t not in _STOPWORDS]


def unstemmed_tokenize(text: str) -> list[str]:
    """Ours without the Snowball stemmer."""
    return _ORIGINAL_TOKENIZE(text, stemmed=False)


def use_tokenizer(name: str) -> Callable[[str], list[str]]:
    """Point index.lexical at a tokenizer: 'snowball' (ours), 'none' (no stemming), 'old'."""
    from index import lexical

    chosen = {"snowball": _ORIGINAL_TOKENIZE, "none": unstemmed_tokenize, "old": old_tokenize}
    lexical.tokenize = chosen[name]  # type: ignore[assignment]
    return lexical.tokenize


from index import lexical as _lexical  # noqa: E402

_ORIGINAL_TOKENIZE = _lexical.tokenize


# --- engines ---------------------------------------------------------------------------------
def _articles(docs: Sequence[Doc]) -> list[tuple[Any, list[Any]]]:
    from index.records import Article, Chunk

    out = []
    for origin, title, chunks in docs:
        text = " ".join(c[1] for c in chunks)  # offsets are not needed by the lexical side
        art = Article(title=title, text=text, origin=origin)
        out.append((art, [Chunk(art.id, n, c[1], 0, 1) for n, c in enumerate(chunks)]))
    return out


class Fts5:
    """Ours: two-stage search (rare-term candidates, BM25 over all terms); ``share=None`` is
    FTS5's exhaustive ``bm25()`` ranking (the query path before the candidate stage)."""

    name = "fts5"

    def __init__(self, work: Path, share: float | None = -1.0) -> None:
        from index.catalog import Catalog
        from index.lexical import CANDIDATE_SHARE, LexicalIndex

        self.catalog = Catalog(work / "catalog.sqlite")
        self.share = CANDIDATE_SHARE if share == -1.0 else share
        self.index = LexicalIndex(self.catalog, candidate_share=self.share or 0.0)
        self.index.refresh()

    def build(self, items: list[tuple[Any, list[Any]]]) -> None:
        for art, chunks in items:
            self.catalog.commit_article(art, chunks, art.origin)

    def change(self, old: Any, new: tuple[Any, list[Any]]) -> None:
        self.catalog.commit_article(new[0], new[1], new[0].origin, replaces=old.id)

    def search(self, query: str, k: int) -> list[str]:
        if self.share is None:
            return [i for i, _ in self.index.search_exhaustive(query, k)]
        return [i for i, _ in self.index.search(query, k)]

    def close(self) -> None:
        self.catalog.close()


class Tantivy:
    """tantivy over the same terms (whitespace-split), one commit per change."""

    name = "tantivy"

    def __init__(self, work: Path) -> None:
        import tantivy

        self.t = tantivy
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("chunk_id", stored=True, tokenizer_name="raw")
        sb.add_text_field("article_id", stored=False, tokenizer_name="raw")
        sb.add_text_field("terms", stored=False, tokenizer_name="whitespace")
        self.schema = sb.build()
        (work / "tantivy").mkdir()
        self.idx = tantivy.Index(self.schema, path=str(work / "tantivy"))
        self.writer = self.idx.writer(heap_size=100_000_000, num_threads=1)

    def _add(self, art: Any, chunks: list[Any]) -> None:
        from index.lexical import chunk_terms

        for c in chunks:
            self.writer.add_document(
                self.t.Document(
                    chunk_id=c.id, article_id=art.id, terms=chunk_terms(art.title, c.text)
                )
            )

    def build(self, items: list[tuple[Any, list[Any]]]) -> None:
        for art, chunks in items:
            self._add(art, chunks)
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.writer = self.idx.writer(heap_size=100_000_000, num_threads=1)
        self.idx.reload()

    def change(self, old: Any, new: tuple[Any, list[Any]]) -> None:
        self.writer.delete_documents("article_id", old.id)
        self._add(*new)
        self.writer.commit()
        self.idx.reload()

    def search(self, query: str, k: int) -> list[str]:
        from index.lexical import tokenize

        terms = list(dict.fromkeys(tokenize(query)))
        if not terms:
            return []
        q = self.t.Query.boolean_query(
            [(self.t.Occur.Should, self.t.Query.term_query(self.schema, "terms", t)) for t in terms]
        )
        searcher = self.idx.searcher()
        return [searcher.doc(a)["chunk_id"][0] for _, a in searcher.search(q, k).hits]

    def close(self) -> None:
        pass


class Bm25s:
    """Today's index: bm25s rebuilt over every chunk after any change, pickled."""

    name = "bm25s"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.rows: dict[str, list[tuple[str, str]]] = {}

    def _rebuild(self) -> None:
        import bm25s

        from index.lexical import tokenize

        self.ids, corpus = [], []
        for aid in sorted(self.rows):
            for cid, terms_text in self.rows[aid]:
                self.ids.append(cid)
                corpus.append(tokenize(terms_text) or ["<empty>"])
        self.bm25 = bm25s.BM25()
        self.bm25.index(corpus, show_progress=False)
        with (self.work / "lexical.pkl").open("wb") as fh:
            pickle.dump({"ids": self.ids, "bm25": self.bm25}, fh)

    def build(self, items: list[tuple[Any, list[Any]]]) -> None:
        for art, chunks in items:
            self.rows[art.id] = [(c.id, f"{art.title}\n{c.text}") for c in chunks]
        self._rebuild()

    def change(self, old: Any, new: tuple[Any, list[Any]]) -> None:
        del self.rows[old.id]
        art, chunks = new
        self.rows[art.id] = [(c.id, f"{art.title}\n{c.text}") for c in chunks]
        self._rebuild()

    def search(self, query: str, k: int) -> list[str]:
        import numpy as np

        from index.lexical import tokenize

        tokens = [t for t in tokenize(query) if t in self.bm25.vocab_dict]
        if not tokens:
            return []
        scores = self.bm25.get_scores(tokens)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [self.ids[i] for i in top if scores[i] > 0]

    def close(self) -> None:
        pass


class Fts5Exhaustive(Fts5):
    """FTS5's ``bm25()`` over every chunk holding a query term (before the candidate stage)."""

    name = "fts5-exhaustive"

    def __init__(self, work: Path) -> None:
        super().__init__(work, share=None)


ENGINES = {"fts5": Fts5, "fts5-exhaustive": Fts5Exhaustive, "tantivy": Tantivy, "bm25s": Bm25s}


# --- measures --------------------------------------------------------------------------------
def latency_queries(docs: Sequence[Doc]) -> list[str]:
    rng = random.Random(1)
    qs = [json.loads(line)["question"] for line in (BBC / "questions-dev.jsonl").open()]
    for _ in range(50):
        words = rng.choice(rng.choice(docs)[2])[1].split()
        qs.append(" ".join(words[:12]))
    paste = " ".join(" ".join(c[1] for c in rng.choice(docs)[2]).split()[:200])
    return [*qs, paste]


def engine_terms(query: str) -> list[str]:
    from index import lexical

    return lexical.tokenize(query)


def speed(engine_name: str, docs: list[Doc], work: Path, changes: int) -> dict[str, Any]:
    items = _articles(docs)
    spare = _articles(synthetic_docs(work.parent, 20, seed=99))[-changes:]  # swapped in
    engine = ENGINES[engine_name](work)
    t0 = time.perf_counter()
    engine.build(items)
    build = time.perf_counter() - t0
    times, cpu = [], []
    for i in range(changes):
        old = items[len(items) // 2 + i][0]
        t0, c0 = time.perf_counter(), time.process_time()
        engine.change(old, spare[i])
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    qs = latency_queries(docs)
    for q in qs[:5]:
        engine.search(q, 60)  # warm (the retriever asks for 60)
    lat, lat_cpu = [], []
    for q in qs * 2:
        t0, c0 = time.perf_counter(), time.process_time()
        engine.search(q, 60)
        lat.append((time.perf_counter() - t0) * 1000)
        lat_cpu.append((time.process_time() - c0) * 1000)
    lat.sort()
    lat_cpu.sort()
    idf_ms = None
    if isinstance(engine, Fts5):  # the extractive answerer asks idf() of each question term
        terms = [t for q in qs[:50] for t in engine_terms(q)]
        t0 = time.perf_counter()
        for t in terms:
            engine.index.idf(t)
        idf_ms = round((time.perf_counter() - t0) * 1000 / len(terms), 3)
    engine.close()
    return {
        "engine": engine_name,
        "chunks": sum(len(d[2]) for d in docs),
        "build_s": round(build, 1),
        "change_s_median": round(statistics.median(times), 3),
        "change_s_max": round(max(times), 3),
        "change_cpu_s_median": round(statistics.median(cpu), 3),
        "query_p50_ms": round(lat[len(lat) // 2], 2),
        "query_p95_ms": round(lat[int(len(lat) * 0.95)], 2),
        "query_cpu_p50_ms": round(lat_cpu[len(lat_cpu) // 2], 2),
        "query_cpu_p95_ms": round(lat_cpu[int(len(lat_cpu) * 0.95)], 2),
        "idf_ms": idf_ms,
        "disk_mb": round(sum(p.stat().st_size for p in work.rglob("*") if p.is_file()) / 1e6, 1),
    }


def bbc_quality(engine: Any, docs: list[Doc]) -> tuple[float, float]:
    from assistant.evaluation.datasets import load_questions
    from assistant.evaluation.metrics import Passage, first_hit_rank

    by_chunk = {}
    for origin, _, chunks in docs:
        for cid, text, a, b in chunks:
            by_chunk[cid] = (origin, text, a, b)
    # Chunk ids in the engines are those of _articles (ids from joined text): map by position.
    pos = {}
    for (_art, chunks), (_, _, orig) in zip(_articles(docs), docs, strict=True):
        for c, o in zip(chunks, orig, strict=True):
            pos[c.id] = o[0]
    ranks = []
    for q in load_questions(BBC / "questions-dev.jsonl"):
        if not q.answerable:
            continue
        hits = [pos[i] for i in engine.search(q.question, 10)]
        passages = []
        for cid in hits:
            origin, text, a, b = by_chunk[cid]
            passages.append(Passage(text=text, origin=origin, start=a, end=b, article_text=None))
        ranks.append(first_hit_rank(passages, q))
    return _recall_mrr(ranks)


def _recall_mrr(ranks: list[int | None]) -> tuple[float, float]:
    recall = sum(1 for r in ranks if r is not None and r <= 5) / len(ranks)
    mrr = sum(1 / r for r in ranks if r is not None and r <= 10) / len(ranks)
    return round(recall, 3), round(mrr, 3)


def rtqa_quality(engine: Any, docs: list[Doc]) -> tuple[float, float]:
    origin_of = {}
    for (_art, chunks), (origin, _, _) in zip(_articles(docs), docs, strict=True):
        for c in chunks:
            origin_of[c.id] = origin
    ranks = []
    for line in (RTQA / "questions.jsonl").open():
        row = json.loads(line)
        gold = set(row.get("gold_doc_ids") or [])
        if not gold:
            continue
        hits = [origin_of[i] for i in engine.search(row["question"], 10)]
        ranks.append(next((n for n, o in enumerate(hits, 1) if o in gold), None))
    return _recall_mrr(ranks)


def quality(
    engines: list[str], tokenizers: list[str], work: Path, only: Sequence[str]
) -> list[dict[str, Any]]:
    out = []
    sets = [("bbc-dev", bbc_docs, bbc_quality), ("rtqa", rtqa_docs, rtqa_quality)]
    for corpus, load, score in [s for s in sets if s[0] in only]:
        docs = load(work)
        for tok in tokenizers:
            use_tokenizer(tok)
            for name in engines:
                folder = Path(tempfile.mkdtemp(dir=work))
                engine = ENGINES[name](folder)
                engine.build(_articles(docs))
                recall, mrr = score(engine, docs)
                engine.close()
                shutil.rmtree(folder, ignore_errors=True)
                out.append(
                    {
                        "set": corpus,
                        "tokenizer": tok,
                        "engine": name,
                        "recall@5": recall,
                        "mrr@10": mrr,
                    }
                )
                print(json.dumps(out[-1]), flush=True)
        use_tokenizer("snowball")
    return out


def _timed(search: Callable[[str, int], list[str]], qs: list[str]) -> dict[str, float]:
    for q in qs[:5]:
        search(q, 60)  # warm (the retriever asks for 60)
    wall, cpu = [], []
    for q in qs * 2:
        t0, c0 = time.perf_counter(), time.process_time()
        search(q, 60)
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    wall.sort()
    cpu.sort()
    return {
        "cpu_p50_ms": round(cpu[len(cpu) // 2], 2),
        "cpu_p95_ms": round(cpu[int(len(cpu) * 0.95)], 2),
        "wall_p50_ms": round(wall[len(wall) // 2], 2),
        "wall_p95_ms": round(wall[int(len(wall) * 0.95)], 2),
    }


def pruning(shares: list[float], work: Path, only: Sequence[str]) -> None:
    """The candidate stage's share, side by side with exhaustive bm25() (share "none"): quality
    on the BBC dev questions at BBC size and at 10x (BBC + 9x synthetic articles, so the gold
    stories compete with 10x the chunks), on RealTime QA, and query latency at 10x. Each
    corpus is indexed once; the share only changes the query path."""
    bbc = bbc_docs(work)
    sets: list[tuple[str, Callable[[], list[Doc]], Callable[..., tuple[float, float]]]] = [
        ("bbc-dev", lambda: bbc, bbc_quality),
        ("bbc-dev-10x", lambda: bbc + synthetic_docs(work, len(bbc) * 9, seed=7), bbc_quality),
        ("rtqa", lambda: rtqa_docs(work), rtqa_quality),
        ("speed-10x", lambda: synthetic_docs(work, len(bbc) * 10), None),  # type: ignore[list-item]
    ]
    grid: list[float | None] = [None, *shares]
    for name, load, score in [s for s in sets if s[0] in only]:
        docs = load()
        folder = Path(tempfile.mkdtemp(dir=work))
        engine = Fts5(folder)
        engine.build(_articles(docs))
        qs = latency_queries(docs) if score is None else []
        for share in grid:
            engine.share = share
            engine.index.candidate_share = share or 0.0
            row: dict[str, Any] = {"set": name, "share": share}
            if score is None:
                row |= {"chunks": sum(len(d[2]) for d in docs), **_timed(engine.search, qs)}
            else:
                recall, mrr = score(engine, docs)
                row |= {"recall@5": recall, "mrr@10": mrr}
            print(json.dumps(row), flush=True)
        engine.close()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, nargs="*", default=[1.0])
    p.add_argument("--engines", nargs="+", default=list(ENGINES))
    p.add_argument("--tokenizers", nargs="+", default=["snowball", "none", "old"])
    p.add_argument("--quality", action="store_true", help="also score retrieval quality")
    p.add_argument("--sets", nargs="+", default=["bbc-dev", "rtqa"], help="quality sets")
    p.add_argument("--changes", type=int, default=5, help="one-article changes to time")
    p.add_argument("--pruning", type=float, nargs="*", help="candidate shares to compare")
    p.add_argument(
        "--pruning-sets", nargs="+", default=["bbc-dev", "bbc-dev-10x", "rtqa", "speed-10x"]
    )
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "lexical-bench")
    p.add_argument("--extra-path", action="append", default=[], help="where tantivy etc. live")
    args = p.parse_args(argv)
    sys.path.extend(args.extra_path)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.pruning is not None:
        pruning(args.pruning, args.work, args.pruning_sets)
        return 0
    if args.quality:
        quality(args.engines, args.tokenizers, args.work, args.sets)
    bbc = bbc_docs(args.work)
    for factor in args.scale:
        docs = bbc if factor == 1 else synthetic_docs(args.work, round(len(bbc) * factor))
        for name in args.engines:
            folder = args.work / f"speed-{name}-{factor}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            print(
                json.dumps({"scale": factor, **speed(name, docs, folder, args.changes)}), flush=True
            )
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
