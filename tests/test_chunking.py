"""The chunker: offsets slice back, nothing over the token budget, nothing lost."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunking import Chunker, embedding_text
from index.embeddings import FakeTokenizingEmbeddings
from index.records import Article
from index.sentences import split_sentences

FAKE = FakeTokenizingEmbeddings(max_tokens=60)


def check(article: Article, chunker: Chunker) -> None:
    chunks = chunker.split(article)
    covered = [False] * len(article.text)
    for n, chunk in enumerate(chunks):
        assert chunk.n == n
        assert article.text[chunk.start : chunk.end] == chunk.text
        tokens = FAKE.count_tokens([embedding_text(article.title, chunk.text)])[0]
        assert tokens <= FAKE.max_tokens
        for i in range(chunk.start, chunk.end):
            covered[i] = True
    missed = [c for c, hit in zip(article.text, covered, strict=True) if not hit]
    assert all(c.isspace() for c in missed)


words = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=12
)
sentence = st.lists(words, min_size=1, max_size=40).map(lambda ws: " ".join(ws) + ".")
paragraph = st.lists(sentence, min_size=1, max_size=8).map(" ".join)
article_text = st.lists(paragraph, min_size=1, max_size=6).map("\n\n".join)


@settings(max_examples=150, deadline=None)
@given(text=article_text, budget=st.integers(min_value=16, max_value=80))
def test_chunks_slice_back_fit_and_cover(text: str, budget: int) -> None:
    check(Article(title="A title", text=text, origin="x"), Chunker(FAKE, budget))


def test_one_enormous_sentence_is_cut_at_word_boundaries() -> None:
    text = " ".join(f"word{i}" for i in range(500)) + "."
    article = Article(title="T", text=text, origin="x")
    chunks = Chunker(FAKE, 50).split(article)
    assert len(chunks) > 5
    for chunk in chunks:
        assert not chunk.text.startswith(("ord", "rd")), "a word was split"
    check(article, Chunker(FAKE, 50))


def test_news_abbreviations_do_not_end_sentences() -> None:
    text = (
        "Wang met U.S. Treasury Secretary Scott Bessent. The Oct. 30 summit follows. "
        'He said "the U.S." Then Mr. Li spoke.'
    )
    spans = [text[a:b] for a, b in split_sentences(text)]
    assert spans == [
        "Wang met U.S. Treasury Secretary Scott Bessent.",
        "The Oct. 30 summit follows.",
        'He said "the U.S."',
        "Then Mr. Li spoke.",
    ]


@pytest.mark.integration
def test_real_tokenizer_never_exceeds_the_model_limit() -> None:
    from assistant.settings import Settings
    from index.embeddings import load_embedder

    embedder = load_embedder(Settings())
    text = ("Supercalifragilistic " * 400).strip() + ". Short one."
    article = Article(title="A long title " * 20, text=text, origin="x")
    for chunk in Chunker(embedder, 256).split(article):
        assert (
            embedder.count_tokens([embedding_text(article.title, chunk.text)])[0]
            <= embedder.max_tokens
        )
