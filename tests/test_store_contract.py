"""The store's reader interface (``index.search.ChunkSearch``), one contract for embedded
Chroma and a real ``chroma run`` server: the retriever relies on exactly these promises."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from assistant.settings import Settings
from index.search import ChunkFilter, ChunkSearch
from index.store import Index
from index.sync import sync

ARTICLES = {
    "ferry.md": (
        "Ferry strike ends",
        "Harbour Times",
        "2024-03-01",
        "Ferry crews on the Skerrow route ended their strike after a pay deal of 6%. "
        "Sailings resume on Tuesday.",
    ),
    "orchard.md": (
        "Orchard harvest doubles",
        "Valley Post",
        "2024-05-20",
        "Apple growers in Kentmere picked twice as many apples as last year. "
        "Cider makers welcomed the glut.",
    ),
    "comet.md": (
        "Comet seen over Oban",
        "Harbour Times",
        "2024-09-12",
        "Stargazers in Oban watched comet Tsuchinshan pass low over the bay. "
        "The comet will not return for 80,000 years.",
    ),
}


@pytest.fixture
def store(store_settings: Settings, tmp_path: Path) -> Iterator[ChunkSearch]:
    folder = tmp_path / "news"
    folder.mkdir()
    for name, (title, source, published, body) in ARTICLES.items():
        (folder / name).write_text(
            f"---\ntitle: {title}\nsource: {source}\npublished: {published}\n---\n{body}\n",
            encoding="utf-8",
        )
    sync(store_settings, [str(folder)], show_bar=False)
    index = Index.open(store_settings)
    assert index is not None
    yield index
    index.close()


def _titles(store: ChunkSearch, ids: list[str]) -> list[str]:
    found = store.fetch(ids)
    return [found[i].article.title for i in ids if i in found]


@pytest.mark.integration
def test_dense_search_ranks_the_matching_article_first(store: ChunkSearch) -> None:
    hits = store.search_dense("Which comet passed over the bay?", 3)
    assert hits and _titles(store, [hits[0][0]]) == ["Comet seen over Oban"]
    assert all(isinstance(score, float) for _, score in hits)


@pytest.mark.integration
def test_lexical_search_finds_a_rare_name(store: ChunkSearch) -> None:
    hits = store.search_lexical("Skerrow", 5)
    assert _titles(store, [i for i, _ in hits]) == ["Ferry strike ends"]
    assert store.search_lexical("zzyzx-never-written", 5) == []


@pytest.mark.integration
def test_fetch_returns_committed_chunks_with_their_article(store: ChunkSearch) -> None:
    ids = [i for i, _ in store.search_dense("apples", 3)]
    found = store.fetch([*ids, "no-such-article:0"])
    assert set(found) == set(ids)
    chunk = found[ids[0]]
    assert chunk.text and chunk.article.published and chunk.end > chunk.start


@pytest.mark.integration
def test_one_filter_restricts_dense_and_fetch_alike(store: ChunkSearch) -> None:
    before_summer = ChunkFilter(published_before=date(2024, 6, 1))
    dense = store.search_dense("comet over the bay", 5, before_summer)
    assert dense and "Comet seen over Oban" not in _titles(store, [i for i, _ in dense])
    every = [i for i, _ in store.search_dense("news", 10)]
    kept = store.fetch(every, before_summer)
    assert {c.article.title for c in kept.values()} == {
        "Ferry strike ends",
        "Orchard harvest doubles",
    }
    harbour = store.fetch(every, ChunkFilter(sources=("Harbour Times",)))
    assert {c.article.title for c in harbour.values()} == {
        "Ferry strike ends",
        "Comet seen over Oban",
    }
    window = ChunkFilter(published_after=date(2024, 5, 20), published_before=date(2024, 5, 20))
    assert {c.article.title for c in store.fetch(every, window).values()} == {
        "Orchard harvest doubles"
    }
