"""Article -> chunks: whole sentences packed up to a token budget of the embedding model.

The budget counts the title prefix that is embedded with every chunk, and is capped by the
model's own limit, so no chunk is ever truncated by the model. A sentence longer than the
budget is cut at word boundaries. Chunks carry character offsets into the article text.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.embeddings import TokenizingEmbeddings
from index.records import Article, Chunk
from index.sentences import Span, split_sentences

CHUNKER_VERSION = "sentences-v1"


def embedding_text(title: str, chunk_text: str) -> str:
    """What is embedded (and lexically indexed) for a chunk: its article title gives context."""
    return f"{title}\n{chunk_text}" if title else chunk_text


@dataclass(frozen=True)
class Chunker:
    """Packs sentences into chunks of at most ``target_tokens`` model tokens."""

    embedder: TokenizingEmbeddings
    target_tokens: int = 128

    @property
    def fingerprint(self) -> str:
        return f"{CHUNKER_VERSION}:{self.target_tokens}"

    def budget(self, title: str) -> int:
        limit = min(self.target_tokens, self.embedder.max_tokens)
        title_tokens = self.embedder.count_tokens([embedding_text(title, "")])[0] if title else 0
        # A very long title must not squeeze chunks to nothing: keep at least a quarter.
        return max(limit - title_tokens, self.embedder.max_tokens // 4, 8)

    def split(self, article: Article) -> list[Chunk]:
        text = article.text
        budget = self.budget(article.title)
        sentences = split_sentences(text)
        counts = self.embedder.count_tokens([text[a:b] for a, b in sentences])
        pieces: list[tuple[Span, int]] = []
        for span, count in zip(sentences, counts, strict=True):
            if count <= budget:
                pieces.append((span, count))
            else:
                pieces.extend(self._cut_long(text, span, budget))
        spans = _pack(pieces, budget)
        return [
            Chunk(article_id=article.id, n=n, text=text[a:b], start=a, end=b)
            for n, (a, b) in enumerate(spans)
        ]

    def _cut_long(self, text: str, span: Span, budget: int) -> list[tuple[Span, int]]:
        """Cut an over-long sentence into pieces of at most ``budget`` tokens, at word starts."""
        start, end = span
        tokens = [(start + a, start + b) for a, b in self.embedder.token_spans(text[start:end])]
        out: list[tuple[Span, int]] = []
        i = 0
        while i < len(tokens):
            j = min(i + budget, len(tokens))
            if j < len(tokens):
                # Back off to a token that starts a word, so no word is split across chunks.
                k = j
                while k > i + 1 and not text[tokens[k][0] - 1].isspace():
                    k -= 1
                j = k if k > i + 1 else j
            piece_end = tokens[j - 1][1] if j < len(tokens) else end
            out.append(((tokens[i][0], piece_end), j - i))
            i = j
        return out


def _pack(pieces: list[tuple[Span, int]], budget: int) -> list[Span]:
    chunks: list[Span] = []
    current: Span | None = None
    used = 0
    for (a, b), count in pieces:
        if current is not None and used + count <= budget:
            current = (current[0], b)
            used += count
        else:
            if current is not None:
                chunks.append(current)
            current, used = (a, b), count
    if current is not None:
        chunks.append(current)
    return chunks
