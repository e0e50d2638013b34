"""The reader: analyse the question, gather candidates, score them with the fitted model,
then answer with the best sentence (its answer phrase marked) or decline.

Parsing every sentence of five passages would cost more than the whole answer budget on a
busy core, so a cheap weighted term overlap picks the ``parse_limit`` most promising sentences
first; only those are parsed and embedded (as many as the fitted model was fitted on).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.reader.analysis import QuestionAnalysis, analyse, nlp
from assistant.reader.candidates import Unit, prefilter, pronoun_start, question_terms, units
from assistant.reader.citations import _article_slice, _citation
from assistant.reader.features import Scored, context_text, featurize
from assistant.reader.scorer import Model, load_model
from assistant.types import NO_ANSWER, Citation
from index.embeddings import embed_passages
from index.lexical import tokenize


@dataclass
class ReaderAnswer:
    """What the reader concluded: text with ``[n]`` markers, the short phrase, citations."""

    text: str
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    short: str | None = None
    analysis: QuestionAnalysis | None = None


class Reader:
    """Find the asked-for answer in retrieved passages, or decline."""

    def __init__(
        self,
        embedder: Embeddings | None = None,
        *,
        model: Model | None = None,
        parse_limit: int | None = None,
    ) -> None:
        self.embedder = embedder
        self.model = model
        self.parse_limit = parse_limit

    def _model(self) -> Model:
        if self.model is None:
            self.model = load_model()
        return self.model

    def candidates(
        self, question: str, docs: Sequence[Document]
    ) -> tuple[QuestionAnalysis, list[Scored]]:
        """The question's analysis and its scored-ready candidates (features, best span)."""
        analysis = analyse(question)
        terms = question_terms(analysis)
        pool = units(docs)
        for u in pool:
            u.prefilter = prefilter(terms, u)
        pool.sort(key=lambda u: (-u.prefilter, u.rank, u.start))
        limit = self.parse_limit if self.parse_limit is not None else self._model().parse_limit
        top = pool[:limit]
        if not top:
            return analysis, []
        parsed = list(nlp().pipe([u.text for u in top]))
        # Without an embedder (unit tests) the passage's cosine from the dense search stands in
        # for the sentence's own.
        sentence = [float(docs[u.doc].metadata.get("dense_score") or 0.0) for u in top]
        if self.embedder is not None:  # only the few parsed sentences are embedded
            vectors = np.array(embed_passages(self.embedder, [context_text(u) for u in top]))
            query = np.array(self.embedder.embed_query(question))
            norms = np.linalg.norm(vectors, axis=1) * np.linalg.norm(query) + 1e-9
            sentence = [float(v) for v in vectors @ query / norms]
        return analysis, featurize(analysis, terms, top, parsed, sentence)

    def score(
        self, question: str, docs: Sequence[Document]
    ) -> tuple[QuestionAnalysis, list[Scored]]:
        """Candidates best first, each with the ranker's probability (``prob``) and the decline
        model's probability that the question is answered when it is quoted (``support``)."""
        analysis, cands = self.candidates(question, docs)
        if cands:
            x = np.vstack([c.x for c in cands])
            model = self._model()
            for c, p, s in zip(cands, model.prob(x), model.answerable(x), strict=True):
                c.prob, c.support = float(p), float(s)
        cands.sort(key=lambda c: (-c.prob, c.unit.rank, c.unit.start))
        return analysis, cands

    def answer(self, question: str, docs: Sequence[Document]) -> ReaderAnswer:
        """Answer from ``docs`` (the retrieved passages, best first)."""
        analysis, ranked = self.score(question, docs)
        threshold = self._model().threshold
        if not ranked or ranked[0].support < threshold:
            return ReaderAnswer(NO_ANSWER, False, _closest(ranked, docs), None, analysis)
        best = ranked[0]
        chosen = [best]
        follow = _continuation(best, ranked, threshold)
        for c in ranked[1:]:
            if c.support < threshold:
                continue
            if c is not follow and _adds_fact(c, chosen, analysis):
                chosen.append(c)
                break
        parts: list[str] = []
        citations: list[Citation] = []
        for c in chosen:
            start, end, quote = _quote(c.unit)
            if c is best and follow is not None:
                widened = _article_slice(docs[c.unit.doc], start, follow.unit.end)
                if widened.endswith(follow.unit.text):
                    end, quote = follow.unit.end, widened
            cite = _citation(len(citations) + 1, docs[c.unit.doc], quote, start, end, c.support)
            if c.unit.headline:  # not in the article text: the headline is its own passage
                cite = replace(cite, start=0, end=len(quote), passage=quote, passage_start=0)
            citations.append(cite)
            parts.append(f"{quote} [{cite.n}]")
        short = None
        if analysis.wants_span and best.span is not None:
            short = best.unit.text[best.span[0] : best.span[1]]
        return ReaderAnswer(" ".join(parts), True, citations, short, analysis)


def _continuation(best: Scored, ranked: list[Scored], threshold: float) -> Scored | None:
    """The sentence right after the best one when it continues it with a pronoun ("But he
    also cautioned ...") and the model would also have accepted it as the answer: such a
    follow-up usually completes the statement, so it is quoted with it."""
    for c in ranked:
        u = c.unit
        if (
            c.support >= threshold
            and not u.headline
            and u.article_id == best.unit.article_id
            and u.start > best.unit.start
            and u.prev_start == best.unit.start
            and pronoun_start(u.text)
        ):
            return c
    return None


def _quote(unit: Unit) -> tuple[int, int, str]:
    """(start, end, text) of what is quoted for a candidate: with its predecessor when it opens
    with a pronoun, so "he" stays resolvable."""
    if unit.headline:
        return 0, 0, unit.text
    if unit.previous and pronoun_start(unit.text):
        gap = unit.start - unit.prev_start - len(unit.previous)
        return unit.prev_start, unit.end, unit.previous + " " * max(gap, 1) + unit.text
    return unit.start, unit.end, unit.text


def _adds_fact(c: Scored, chosen: list[Scored], analysis: QuestionAnalysis) -> bool:
    """A second sentence is worth quoting only for a short-answer question, when it gives a
    different answer phrase (another candidate value for the asked slot, which the decline
    model accepts too): no near-duplicate, no overlap. It need not name the question's subject
    as often as the first: the answer sentence often says "the champion" where the question
    says "Merritt" (dropping that check gained 5 points on the BBC dev set and 3 on the own
    fit split, 0 on RealTime QA's fit split, and lost nothing)."""
    for other in chosen:
        if other.unit.article_id == c.unit.article_id and _overlap(other.unit, c.unit):
            return False
        if _near_duplicate(other.unit.text, c.unit.text):
            return False
    if not analysis.wants_span or c.span is None:
        return False  # a statement is answered by one sentence (and its continuation)
    phrase = c.unit.text[c.span[0] : c.span[1]].lower()
    return all(phrase not in _quote(o.unit)[2].lower() for o in chosen)


def _overlap(a: Unit, b: Unit) -> bool:
    qa, qb = _quote(a), _quote(b)
    return (qa[0] < qb[1] and qb[0] < qa[1]) or a.start == b.start


def _near_duplicate(a: str, b: str) -> bool:
    ta, tb = set(tokenize(a)), set(tokenize(b))
    if not ta or not tb:
        return False
    return len(ta & tb) / len(ta | tb) > 0.6


def _closest(ranked: list[Scored], docs: Sequence[Document]) -> list[Citation]:
    """Shown with a decline: the best candidate of each of up to three articles."""
    best: dict[str, Scored] = {}
    for c in ranked:
        if not c.unit.headline:
            best.setdefault(c.unit.article_id, c)
    picks = sorted(best.values(), key=lambda c: -c.prob)[:3]
    return [
        _citation(i + 1, docs[c.unit.doc], c.unit.text, c.unit.start, c.unit.end, c.support)
        for i, c in enumerate(picks)
    ]
