"""Chunk, embed and commit articles in bounded batches, while the sync is still reading.

Why batches: a sync of thousands of articles used to load and chunk everything before it
embedded anything, so for minutes nothing was searchable and a kill lost all of it. Here the
sync hands over articles as it reads them; once a batch holds enough chunks it is embedded and
committed, so memory is bounded by one batch and a kill loses at most one batch. The first
batch is small (the first articles are searchable within seconds); later ones double up to
``BATCH_CHUNKS`` so the model works on full batches.

Within a batch the chunks of all its articles are embedded together, longest first, in
slices: every model call gets texts of similar length (little padding) whatever article they
come from, and an article is committed as soon as its last chunk has a vector: vectors are
stored first, then one catalog transaction makes the article visible (a crash leaves only
whole articles; vectors without an article are collected by the next sync).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from index.chunking import embedding_text
from index.records import Article, Chunk
from index.store import Index

FIRST_BATCH_CHUNKS = 64
BATCH_CHUNKS = 1024  # the most chunks held in memory (and lost to a kill) at once
SLICES_PER_BATCH_SIZE = 4  # texts per model call: this many embedding batches


@dataclass
class PendingArticle:
    """An article to embed, with the article it replaces (same origin, older version)."""

    article: Article
    source_file: str
    replaces: str | None = None
    replaces_chunks: int = 0
    chunks: list[Chunk] = field(default_factory=list)


class BatchPipeline:
    """Takes articles one by one; embeds and commits them a batch at a time.

    ``before_write`` runs before the first vectors are stored (the sync marks the index dirty
    so a crash's orphans get collected); ``committed`` runs after each article is visible,
    ``flushed`` after each batch.
    """

    def __init__(
        self,
        index: Index,
        *,
        before_write: Callable[[], None],
        committed: Callable[[PendingArticle], None],
        flushed: Callable[[], None] = lambda: None,
        first_batch: int = FIRST_BATCH_CHUNKS,
        max_batch: int = BATCH_CHUNKS,
    ) -> None:
        self.index = index
        self.before_write = before_write
        self.committed = committed
        self.flushed = flushed
        self.limit = max(1, first_batch)
        self.max_batch = max(self.limit, max_batch)
        self.slice = max(1, index.settings.embedding_batch_size * SLICES_PER_BATCH_SIZE)
        self.chunker = index.chunker
        self.batch: list[PendingArticle] = []
        self.size = 0
        self.chunks_embedded = 0

    def add(self, item: PendingArticle) -> None:
        item.chunks = self.chunker.split(item.article)
        self.batch.append(item)
        self.size += len(item.chunks)
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        """Embed and commit everything held now."""
        batch, self.batch, self.size = self.batch, [], 0
        if not batch:
            return
        self.limit = min(self.limit * 2, self.max_batch)
        self.before_write()
        # (article index, chunk) pairs, longest text first: similar lengths share a model call.
        order = sorted(
            ((i, c) for i, item in enumerate(batch) for c in item.chunks),
            key=lambda pair: len(pair[1].text) + len(batch[pair[0]].article.title),
            reverse=True,
        )
        left = [len(item.chunks) for item in batch]
        vectors: list[dict[int, list[float]]] = [{} for _ in batch]
        for start in range(0, len(order), self.slice):
            part = order[start : start + self.slice]
            texts = [embedding_text(batch[i].article.title, c.text) for i, c in part]
            done: list[int] = []
            for (i, chunk), vector in zip(
                part, self.index.embedder.embed_documents(texts), strict=True
            ):
                vectors[i][chunk.n] = vector
                left[i] -= 1
                if left[i] == 0:
                    done.append(i)
            self._store([batch[i] for i in done], [vectors[i] for i in done])
            for i in done:
                vectors[i] = {}  # stored: free them
        self.flushed()

    def _store(self, items: list[PendingArticle], vectors: list[dict[int, list[float]]]) -> None:
        """Write the vectors of whole articles, then commit the articles one by one."""
        if not items:
            return
        ids: list[str] = []
        embedded: list[list[float]] = []
        metas: list[dict[str, Any]] = []
        docs: list[str] = []
        for item, by_n in zip(items, vectors, strict=True):
            for chunk in item.chunks:
                ids.append(chunk.id)
                embedded.append(by_n[chunk.n])
                docs.append(chunk.text)
                metas.append(_metadata(item.article, chunk))
        self.index.vectors.upsert(ids, embedded, metas, docs)
        self.chunks_embedded += len(ids)
        for item in items:
            self.index.catalog.commit_article(
                item.article, item.chunks, item.source_file, replaces=item.replaces
            )
            if item.replaces:
                self.index.vectors.delete(chunk_ids(item.replaces, item.replaces_chunks))
            self.committed(item)


def _metadata(article: Article, chunk: Chunk) -> dict[str, Any]:
    return {
        "article_id": article.id,
        "n": chunk.n,
        "start": chunk.start,
        "end": chunk.end,
        "title": article.title,
        "source": article.source or "",
        "published": int(article.published.strftime("%Y%m%d")) if article.published else 0,
    }


def chunk_ids(article_id: str, n_chunks: int) -> list[str]:
    return [f"{article_id}:{n}" for n in range(n_chunks)]
