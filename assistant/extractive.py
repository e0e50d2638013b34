"""The default answerer: compose a short answer from the retrieved sentences themselves.

No instruction-tuned LLM can be had offline, so the answer is the few sentences that best
answer the question (meaning and question-term overlap, plus what kind of answer the question
wants), each with its ``[n]`` marker. A sentence that opens with a pronoun brings its
predecessor, so "he" stays resolvable. Below a calibrated score it declines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.types import NO_ANSWER, Citation
from index.lexical import tokenize
from index.sentences import split_sentences

#: Best-sentence score below which the answerer declines; calibrated on the dev questions
#: (see README "Quality"): the value that keeps false declines of answerable questions low.
DECLINE_THRESHOLD = 0.45

_PRONOUN_START = re.compile(
    r"^(?:\W*)(?:but |and |however,? |yet |so )?(?:he|she|they|it|this|that|these|those|his|her|"
    r"their|its|the company|the firm|the group)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d|£|\$|€|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|hundred|"
                     r"thousand|million|billion|half|dozen)\b", re.IGNORECASE)
_DATE = re.compile(r"\b(?:1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|"
                   r"september|october|november|december|monday|tuesday|wednesday|thursday|"
                   r"friday|saturday|sunday|yesterday|today|last (?:week|month|year))\b",
                   re.IGNORECASE)
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+")


@dataclass
class Sentence:
    doc: int
    start: int  # article offsets
    end: int
    text: str
    lexical: float = 0.0
    dense: float = 0.0
    score: float = 0.0


def expected_type(question: str) -> str | None:
    q = question.lower()
    if re.search(r"\bhow (?:much|many|long|far|old|big)\b|\bwhat (?:price|percentage|amount|"
                 r"proportion|share|score|sum|figure|number)\b|\bby how\b", q):
        return "number"
    if re.search(r"\bwhen\b|\bwhat (?:year|date|day|month)\b", q):
        return "date"
    if re.search(r"^\s*who\b|\bwhich (?:\w+ )?(?:person|man|woman|player|singer|actor|"
                 r"executive|minister|chief|editor|member|student|boss|coach|director)\b", q):
        return "name"
    return None


def _has_type(text: str, kind: str | None, question: str) -> bool:
    if kind == "number":
        return bool(_NUMBER.search(text))
    if kind == "date":
        return bool(_DATE.search(text))
    if kind == "name":
        q_words = set(re.findall(r"[A-Z][a-z]+", question))
        return any(m.group() not in q_words for m in _NAME.finditer(text))
    return True


class ExtractiveAnswerer:
    """Pick, order and cite the sentences that answer a question."""

    def __init__(self, embedder: Embeddings, idf: Callable[[str], float], *,
                 threshold: float = DECLINE_THRESHOLD, max_sentences: int = 3,
                 candidates: int = 12) -> None:
        self.embedder = embedder
        self.idf = idf
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.candidates = candidates

    def score(self, question: str, docs: Sequence[Document]) -> list[Sentence]:
        """Every sentence of the retrieved passages, scored, best first."""
        terms = list(dict.fromkeys(tokenize(question)))
        weights = {t: self.idf(t) or 8.0 for t in terms}  # unseen terms are the rarest of all
        total = sum(weights.values()) or 1.0
        kind = expected_type(question)
        sentences: list[Sentence] = []
        for d, doc in enumerate(docs):
            base = doc.metadata["start"]
            title_terms = set(tokenize(doc.metadata.get("title") or ""))
            for a, b in split_sentences(doc.page_content):
                text = doc.page_content[a:b]
                toks = set(tokenize(text))
                hit = sum(w for t, w in weights.items() if t in toks)
                hit += 0.5 * sum(w for t, w in weights.items() if t in title_terms and t not in toks)
                s = Sentence(d, base + a, base + b, text, lexical=hit / total)
                s.score = s.lexical - 0.02 * d - (0.0 if _has_type(text, kind, question) else 0.25)
                sentences.append(s)
        sentences.sort(key=lambda s: -s.score)
        top = sentences[: self.candidates]
        if top:
            vectors = np.array(self.embedder.embed_documents([s.text for s in top]))
            query = np.array(self.embedder.embed_query(question))
            sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query) + 1e-9)
            for s, sim in zip(top, sims, strict=True):
                s.dense = float(sim)
                s.score = 0.5 * s.score + 0.5 * s.dense
        for s in sentences[self.candidates:]:
            s.score = 0.5 * s.score  # never embedded: ranked below every embedded candidate
        sentences.sort(key=lambda s: -s.score)
        return sentences

    def answer(self, question: str, docs: Sequence[Document]) -> tuple[str, list[Citation], bool]:
        """(answer text with [n] markers, citations, answered?)."""
        ranked = self.score(question, docs)
        if not ranked or ranked[0].score < self.threshold:
            return NO_ANSWER, self._closest(ranked, docs), False
        chosen: list[Sentence] = []
        for s in ranked:
            if len(chosen) == self.max_sentences or s.score < ranked[0].score - 0.12:
                break
            if any(_near_duplicate(s.text, c.text) or _overlaps(s, c) for c in chosen):
                continue
            chosen.append(s)
        parts: list[str] = []
        citations: list[Citation] = []
        for s in chosen:
            doc = docs[s.doc]
            start = self._with_antecedent(s, doc)
            quote = _article_slice(doc, start, s.end)
            citation = _citation(len(citations) + 1, doc, quote, start, s.end, s.score)
            citations.append(citation)
            parts.append(f"{quote} [{citation.n}]")
        return " ".join(parts), citations, True

    @staticmethod
    def _with_antecedent(s: Sentence, doc: Document) -> int:
        """Start of the quote: the sentence's predecessor too when it opens with a pronoun."""
        if not _PRONOUN_START.match(s.text):
            return s.start
        base = doc.metadata["start"]
        context = doc.metadata.get("context_before", "") + doc.page_content
        offset = base - len(doc.metadata.get("context_before", ""))
        spans = [(offset + a, offset + b) for a, b in split_sentences(context)]
        previous = [a for a, b in spans if b <= s.start]
        return previous[-1] if previous else s.start

    def _closest(self, ranked: list[Sentence], docs: Sequence[Document]) -> list[Citation]:
        best: dict[int, Sentence] = {}
        for s in ranked:
            best.setdefault(s.doc, s)
        picks = sorted(best.values(), key=lambda s: -s.score)[:3]
        return [_citation(i + 1, docs[s.doc], s.text, s.start, s.end, s.score)
                for i, s in enumerate(picks)]


def _article_slice(doc: Document, start: int, end: int) -> str:
    base = doc.metadata["start"]
    before = doc.metadata.get("context_before", "")
    text = before + doc.page_content
    offset = base - len(before)
    return text[start - offset: end - offset]


def _citation(n: int, doc: Document, quote: str, start: int, end: int, score: float) -> Citation:
    m = doc.metadata
    passage, passage_start = doc.page_content, m["start"]
    if start < passage_start:  # the quote reaches back into the previous chunk for context
        passage = _article_slice(doc, start, m["end"])
        passage_start = start
    return Citation(
        n=n, article_id=m["article_id"], title=m["title"], source=m.get("source"),
        published=m.get("published"), url=m.get("url"), quote=quote, chunk_id=m["chunk_id"],
        start=start, end=end, score=round(float(score), 4), passage=passage,
        passage_start=passage_start,
    )


def _near_duplicate(a: str, b: str) -> bool:
    ta, tb = set(tokenize(a)), set(tokenize(b))
    if not ta or not tb:
        return False
    return len(ta & tb) / len(ta | tb) > 0.6


def _overlaps(a: Sentence, b: Sentence) -> bool:
    return a.doc == b.doc and a.start < b.end and b.start < a.end
