"""The plain LangChain tutorial pipeline, kept as the yardstick `assistant eval`/`bench` beat.

It is the recipe most RAG tutorials teach: a ``RecursiveCharacterTextSplitter`` (1000
characters, 200 overlap), ``add_documents`` into ``langchain_chroma.Chroma``, and
``similarity_search`` top 4, its top passage taken as "the answer". It reads articles with our
loaders and embeds with the same all-MiniLM-L6-v2, so the comparison measures the pipelines, not
the model or the parsing. ``assistant eval`` runs that model on our backend (the vectors are the
same); ``assistant bench`` runs it as the tutorial publishes it, through sentence-transformers on
torch, unless told ``--tutorial-embedder ours``. It has no incremental sync: a changed article is
deleted by its ``origin`` metadata and added again (the most a user of the recipe would do by
hand).

``python -m assistant.evaluation.baseline ask DIR QUESTION`` answers from a persisted tutorial index in
a fresh process; the benchmark times it as the tutorial's cold start.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.errors import ConfigError, LoadError
from assistant.evaluation.askers import forget_cached_queries
from assistant.evaluation.metrics import DEPTH, Passage, Response
from index.loaders import iter_article_files, load_file
from index.records import Article

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4
COLLECTION = "tutorial"
# The tutorial's single ``add_documents`` call fails past Chroma's max batch (5,461 records:
# "Batch size ... is greater than max batch size"), as it does on the BBC corpus's 7,612
# chunks; adding in slices is the fix its users reach for. Embedding cost is unchanged.
ADD_BATCH = 5000


# What the tutorial pipeline imports beyond the runtime dependencies: the `eval` extra.
EVAL_EXTRA = ("langchain_chroma", "langchain_text_splitters")


def require_eval_extra(command: str) -> None:
    """Fail before any work when the `eval` extra is missing, naming the install that adds it.

    Without this check the tutorial's import failed after our whole side of the evaluation had
    run (minutes of work lost) with a bare ImportError.
    """
    missing = []
    for module in EVAL_EXTRA:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ConfigError(
            f"{command} runs the LangChain tutorial pipeline, which needs the eval extra "
            f"({', '.join(missing)} not installed): pip install 'article-assistant[eval]' "
            "(in a checkout: make install-eval)"
        )


@dataclass
class TutorialIndexStats:
    """What one full indexing run of the tutorial pipeline did and how long it took."""

    articles: int = 0
    chunks: int = 0
    seconds: float = 0.0
    failed: list[str] = field(default_factory=list)


def load_articles(roots: Iterable[str | Path], max_bytes: int) -> tuple[list[Article], list[str]]:
    """Every article under ``roots`` read by our loaders, so both pipelines see the same text."""
    articles: list[Article] = []
    failed: list[str] = []
    for root in roots:
        for path in iter_article_files(Path(root)):
            try:
                articles.extend(load_file(path.absolute(), max_bytes=max_bytes).articles)
            except LoadError as exc:
                failed.append(str(exc))
    return articles, failed


def _as_document(article: Article) -> Document:
    """The article as a tutorial loader would give it: headline, blank line, text."""
    head = f"{article.title}\n\n"
    return Document(
        page_content=head + article.text,
        metadata={"origin": article.origin, "title": article.title, "offset": len(head)},
    )


class TutorialPipeline:
    """Split, embed, store and search exactly as the LangChain RAG tutorial does."""

    def __init__(self, embeddings: Embeddings, directory: Path, *, max_bytes: int) -> None:
        from langchain_chroma import Chroma
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self.max_bytes = max_bytes
        self.embeddings = embeddings
        self.splitter = RecursiveCharacterTextSplitter(
            chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, add_start_index=True
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.store = Chroma(
            collection_name=COLLECTION,
            embedding_function=embeddings,
            persist_directory=str(directory),
            client_settings=_chroma_settings(),
        )
        self.texts: dict[str, str] = {}  # origin -> article text, to score passages by offset

    def index(self, roots: Sequence[str | Path]) -> TutorialIndexStats:
        """Load, split and add everything (in slices Chroma accepts), as the tutorial does."""
        started = time.perf_counter()
        articles, failed = load_articles(roots, self.max_bytes)
        splits = self.splitter.split_documents([_as_document(a) for a in articles])
        for i in range(0, len(splits), ADD_BATCH):
            self.store.add_documents(documents=splits[i : i + ADD_BATCH])
        self.texts.update((a.origin, a.text) for a in articles)
        seconds = time.perf_counter() - started
        return TutorialIndexStats(len(articles), len(splits), seconds, failed)

    def update(self, path: Path) -> int:
        """Re-index one changed file: delete its chunks (by their ``origin``), add it again."""
        articles = load_file(path.absolute(), max_bytes=self.max_bytes).articles
        for article in articles:
            self.store.delete(where={"origin": article.origin})
        splits = self.splitter.split_documents([_as_document(a) for a in articles])
        if splits:
            self.store.add_documents(documents=splits)
        self.texts.update((a.origin, a.text) for a in articles)
        return len(splits)

    def search(self, question: str, k: int = TOP_K) -> list[Document]:
        return self.store.similarity_search(question, k=k)

    def span(self, doc: Document) -> tuple[int, int]:
        """A passage's [start, end) in its article's text (the headline prefix taken off)."""
        start = int(doc.metadata.get("start_index", 0)) - int(doc.metadata.get("offset", 0))
        end = start + len(doc.page_content)
        return max(start, 0), max(end, 0)


def tutorial_asker(pipeline: TutorialPipeline) -> Callable[[str], Response]:
    """For `assistant eval`: the timed top-4 search (its top passage is the answer, the four its
    sources), plus an untimed top-10 search so MRR@10 can be scored."""

    def passage(doc: Document) -> Passage:
        start, end = pipeline.span(doc)
        origin = doc.metadata["origin"]
        return Passage(doc.page_content, origin, start, end, pipeline.texts.get(origin))

    def ask(question: str) -> Response:
        forget_cached_queries(pipeline.embeddings)
        started = time.perf_counter()
        top = pipeline.search(question)
        elapsed = (time.perf_counter() - started) * 1000
        ranked = [passage(d) for d in pipeline.search(question, k=DEPTH)]
        text = top[0].page_content if top else ""
        return Response(ranked, text, bool(top), [passage(d) for d in top], elapsed, elapsed)

    return ask


def _chroma_settings() -> Any:
    import chromadb

    return chromadb.Settings(anonymized_telemetry=False)


def _ask(directory: str, question: str) -> int:
    """Cold-start probe: open the persisted tutorial index, print its top passage."""
    from langchain_chroma import Chroma

    from assistant.settings import Settings
    from index.embeddings import load_embedder

    store = Chroma(
        collection_name=COLLECTION,
        embedding_function=load_embedder(Settings()),
        persist_directory=directory,
        client_settings=_chroma_settings(),
        create_collection_if_not_exists=False,
    )
    docs = store.similarity_search(question, k=TOP_K)
    print(docs[0].page_content if docs else "(nothing indexed)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "ask":
        print("usage: python -m assistant.evaluation.baseline ask DIR QUESTION", file=sys.stderr)
        sys.exit(2)
    sys.exit(_ask(sys.argv[2], sys.argv[3]))
