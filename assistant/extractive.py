"""The default no-LLM answerer (``ASSISTANT_ANSWERER=extractive``): the few retrieved sentences
that best answer the question (question-term overlap, meaning, and the kind of answer the
question wants), each with its ``[n]`` marker; a sentence opening with a pronoun brings its
predecessor; below a calibrated score it declines.

Its constants were hand-tuned on the BBC dev questions; its question words are weighed by
general English frequency, not the index's IDF, so how it weighs a question does not change
with what else is indexed (with corpus IDF, 6 of 18 answerable questions about the sample were
declined when it was indexed alone, 1 beside the BBC corpus; now 0 and 1).
``assistant.reader`` (question analysis, a fitted model) is meant to replace it. It stays the
default while it answers held-out questions better: 0.793 against 0.736 on the 179 held-out
BBC questions (``bench/README.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from assistant.reader.citations import _article_slice, _citation
from assistant.types import NO_ANSWER, Citation
from assistant.wordweights import question_weights
from index.embeddings import embed_passages
from index.lexical import tokenize
from index.sentences import split_sentences

#: Best-sentence score below which the answerer declines: the highest threshold that declines
#: at most 5% of the answerable fit questions (BBC dev, ``bench/data/bbc-fit-questions.jsonl``,
#: the fit splits of our own and RealTime QA's questions, and their gold-article-dropped
#: variants as unanswerable examples), by ``bench/calibrate_extractive.py choose`` over passages
#: of the answering retriever. 0.33 before the 160 BBC fit questions were added; the rule's
#: boundary also moves a step between index builds. Held-out figures: bench/README.md.
DECLINE_THRESHOLD = 0.35


@dataclass(frozen=True)
class ScoreWeights:
    """How a sentence's score is put together: ``lex`` * weighted question-term coverage
    (general English word weights, ``assistant.wordweights``) + ``dense`` * cosine similarity
    + answer-type bonus or penalty - ``doc_decay`` * passage rank. The defaults were hand-tuned
    on the BBC dev questions; a field per constant so ``bench/calibrate_extractive.py tune``
    can search them on fit questions and report on others."""

    lex: float = 0.6
    dense: float = 0.3
    doc_decay: float = 0.02
    type_bonus: float = 0.08
    untyped_penalty: float = 0.5
    local_floor: float = 1.0
    context: float = 1.0
    entity_penalty: float = 0.1
    margin: float = 0.25  # further sentences must score within this of the best one


_ADJACENT = 3  # sentences this close (a space or line break apart) merge into one quote
# Sentences (best by lexical score) embedded for the meaning score: 8, not 12, left every
# measured score unchanged at two thirds of the cost (bench/README.md, "Fewer sentences").
CANDIDATES = 8

_PRONOUN_START = re.compile(
    r"^(?:\W*)(?:but |and |however,? |yet |so )?(?:he|she|they|it|this|that|these|those|his|her|"
    r"their|its|the company|the firm|the group)\b",
    re.IGNORECASE,
)
_CONTINUATION = re.compile(
    r"^\W*(?:but|and|however,?|yet)\s+(?:he|she|they)\b|^\W*(?:he|she|they)\s+(?:also|added)\b",
    re.IGNORECASE,
)
_MONEY_Q = re.compile(
    r"\b(?:money|cost|costs|pay|paid|price|priced|worth|fee|fees|fine|fined|award|"
    r"awarded|raise|raised|prize|spend|spent|sued|settle|charge|invest|"
    r"investment|funding|budget|salary|bid|deal|sell for|sold for)\b"
)
_MONEY = re.compile(
    r"[£$€]\s?\d|\d[\d.,]*\s?(?:m|bn|k)?\s?(?:euros?|dollars?|pounds?|yen|"
    r"yuan|rupees?)\b|\b\d+p\b|\b(?:A|US|HK)\$",
    re.IGNORECASE,
)
# "How much more did it agree to pay?" is answered by "72% more" as well as by an amount.
_COMPARATIVE_Q = re.compile(r"\bhow much (?:more|less|extra|higher|lower|cheaper|dearer)\b")
_PERCENT = re.compile(r"\d[\d.,]*\s?(?:%|per ?cent\b)", re.IGNORECASE)
_QUANTITY = re.compile(
    r"\d[\d,.:]*\d|\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"twenty|thirty|forty|fifty|hundred|thousand|million|billion|half|dozen|"
    r"double|treble|triple)\b",
    re.IGNORECASE,
)
_DATE = re.compile(
    r"\b(?:1[89]\d\d|20\d\d|january|february|march|april|may|june|july|august|"
    r"september|october|november|december|monday|tuesday|wednesday|thursday|"
    r"friday|saturday|sunday|yesterday|today|tomorrow|last (?:week|month|year))\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"\b[A-Z][\w&'-]*")


def expected_type(question: str) -> str | None:
    """The kind of answer a question asks for: money, quantity, date, name or None.

    Decided by the question's first wh-word, so "Which film ... when she ..." asks for a name.
    """
    q = question.lower()
    wh = re.search(r"\b(who|whom|whose|which|what|when|where|why|how)\b", q)
    if not wh:
        return None
    rest = q[wh.start() :]
    word = wh.group(1)
    if re.search(r"\bby what (?:score|margin)\b", q):
        return "quantity"
    if word == "how":
        if re.match(r"how (?:much|many)\b", rest) and _MONEY_Q.search(q):
            return "money"
        if re.match(r"how (?:much|many|long|far|old|big|fast|high|often)\b", rest):
            return "quantity"
        return None
    if word == "when" or re.match(r"what (?:year|date|day|month)\b", rest):
        return "date"
    if word == "what":
        # "what price", "what was the attendance", "what is the US price", "what monthly fee"
        head = re.match(
            r"what (?:(?:is|was|are|were|will be) )?(?:the )?(?:\w+ )?"
            r"(price|fee|sum|cost|amount|figure|percentage|proportion|share|score|"
            r"number|time|record|rate|attendance|total|age|size|margin|salary)\b",
            rest,
        )
        if head and (
            head.group(1) in ("price", "fee", "sum", "cost", "salary")
            or (head.group(1) in ("amount", "figure") and _MONEY_Q.search(q))
        ):
            return "money"
        if head:
            return "quantity"
        if re.match(r"what (?:is|was) the name\b", rest) or re.search(r"\bcalled\b", rest):
            return "name"
        return None
    if word in ("who", "whom", "whose", "which"):
        return "name"
    return None


def has_type(text: str, kind: str | None, question: str) -> bool:
    """Does ``text`` hold something of the wanted kind that the question does not already say?"""
    if kind is None:
        return True
    q_lower = question.lower()
    if kind == "money":
        amounts = [m.group() for m in _MONEY.finditer(text) if m.group().lower() not in q_lower]
        wanted = _wanted_currency(q_lower)
        if wanted:  # "the US price ... in dollars": an amount in pounds does not answer it
            return any(wanted.search(a) for a in amounts) or bool(amounts and wanted.search(text))
        if not amounts and _COMPARATIVE_Q.search(q_lower):
            amounts = [m.group() for m in _PERCENT.finditer(text) if m.group() not in q_lower]
        return bool(amounts)
    if kind == "quantity":
        q_numbers = {m.group().lower() for m in _QUANTITY.finditer(question)}
        return any(m.group().lower() not in q_numbers for m in _QUANTITY.finditer(text))
    if kind == "date":
        return any(m.group().lower() not in q_lower for m in _DATE.finditer(text))
    q_words = {w.lower() for w in re.findall(r"[\w&'-]+", question)}
    words = list(_CAPITALISED.finditer(text))
    return any(
        m.start() > 0 and m.group().lower() not in q_words and m.group().lower() not in _STOP_CAPS
        for m in words
    )


_CURRENCIES = {
    "dollar": re.compile(r"\$|dollar", re.IGNORECASE),
    "euro": re.compile(r"€|euro", re.IGNORECASE),
    "pound": re.compile(r"£|pound|sterling", re.IGNORECASE),
    "yen": re.compile(r"¥|yen", re.IGNORECASE),
}


def _wanted_currency(q_lower: str) -> re.Pattern[str] | None:
    match = re.search(r"\bin (dollar|euro|pound|yen)s?\b", q_lower)
    return _CURRENCIES[match.group(1)] if match else None


@dataclass
class Sentence:
    """A candidate sentence; ``start``/``end`` are offsets in the article text."""

    doc: int
    start: int
    end: int
    text: str
    lexical: float = 0.0
    dense: float = 0.0
    score: float = 0.0
    context: str = ""
    typed: bool = True
    bonus: float = 0.0


_STOP_WORDS = (
    "the a an he she it they we i but and in on at for of to this that his her their its mr "
    "mrs ms dr said however while when after before as if so yet"
)
_STOP_CAPS = frozenset(_STOP_WORDS.split())


class ExtractiveAnswerer:
    """Pick, order and cite the sentences that answer a question."""

    def __init__(
        self,
        embedder: Embeddings,
        weigh: Callable[[str], dict[str, float]] = question_weights,
        *,
        threshold: float = DECLINE_THRESHOLD,
        max_sentences: int = 3,
        candidates: int = CANDIDATES,
        weights: ScoreWeights = ScoreWeights(),  # frozen, so one shared default is safe
    ) -> None:
        self.embedder = embedder
        self.weigh = weigh  # question -> {term: weight}; general English, not the index
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.candidates = candidates
        self.weights = weights

    def score(self, question: str, docs: Sequence[Document]) -> list[Sentence]:
        """Every sentence of the retrieved passages, scored, best first."""
        terms = list(dict.fromkeys(tokenize(question)))
        kind = expected_type(question)
        sentences: list[Sentence] = []
        tokens: list[tuple[set[str], set[str], set[str]]] = []
        for d, doc in enumerate(docs):
            base = doc.metadata["start"]
            title_terms = set(tokenize(doc.metadata.get("title") or ""))
            previous = _last_sentence(doc.metadata.get("context_before", ""))
            for a, b in split_sentences(doc.page_content):
                text = doc.page_content[a:b]
                toks = set(tokenize(text))
                # "But he also cautioned ...": the previous sentence says who "he" is.
                context = set(tokenize(previous)) - toks if _PRONOUN_START.match(text) else set()
                s = Sentence(d, base + a, base + b, text, context=previous if context else "")
                s.typed = has_type(text, kind, question)
                sentences.append(s)
                tokens.append((toks, context, title_terms))
                previous = text
        sw = self.weights  # the score's constants; term_weights: each question term's weight
        term_weights = self._term_weights(question, terms, [t[0] for t in tokens])
        total = sum(term_weights.values()) or 1.0
        entities = _entities(question)
        for s, (toks, context, title_terms) in zip(sentences, tokens, strict=True):
            hit = sum(tw for t, tw in term_weights.items() if t in toks)
            hit += sw.context * sum(tw for t, tw in term_weights.items() if t in context)
            hit += 0.5 * sum(
                tw
                for t, tw in term_weights.items()
                if t in title_terms and t not in toks and t not in context
            )
            s.lexical = hit / total
            # A sentence about someone else ("Trump threatened ...") does not answer a question
            # about Bessent: it must name the question's entity, itself, by pronoun or in its title.
            named = not entities or bool(entities & (toks | context | title_terms))
            s.bonus = (
                -sw.doc_decay * s.doc
                - (0.0 if named else sw.entity_penalty)
                + (0.0 if kind is None else sw.type_bonus if s.typed else -sw.untyped_penalty)
            )
            s.score = sw.lex * s.lexical + s.bonus
        sentences.sort(key=lambda s: -s.score)
        top = sentences[: self.candidates]
        if top:
            texts = [f"{s.context} {s.text}".strip() for s in top]
            vectors = np.array(embed_passages(self.embedder, texts))
            query = np.array(self.embedder.embed_query(question))
            sims = (
                vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query) + 1e-9)
            )
            for s, sim in zip(top, sims, strict=True):
                s.dense = float(sim)
                s.score += sw.dense * s.dense
        sentences.sort(key=lambda s: -s.score)
        return sentences

    def _term_weights(
        self, question: str, terms: list[str], sentences: list[set[str]]
    ) -> dict[str, float]:
        """A word's general weight times IDF among the retrieved sentences: a name every
        retrieved sentence repeats says which article, the rarer words say which sentence
        answers."""
        n = len(sentences) or 1
        known = self.weigh(question)
        weights = {}
        for t in terms:
            local = sum(1 for toks in sentences if t in toks)
            weights[t] = known.get(t, 1.0) * (
                self.weights.local_floor + np.log(1 + n / (1 + local))
            )
        return weights

    def answer(self, question: str, docs: Sequence[Document]) -> tuple[str, list[Citation], bool]:
        """(answer text with [n] markers, citations, answered?)."""
        return self.read(question, docs, self.score(question, docs))

    def read(
        self, question: str, docs: Sequence[Document], ranked: list[Sentence]
    ) -> tuple[str, list[Citation], bool]:
        """``answer`` from sentences already ranked by ``score`` (a measuring script that wants
        the best score too need not score twice)."""
        kind = expected_type(question)
        if not ranked or ranked[0].score < self.threshold or (kind and not ranked[0].typed):
            return NO_ANSWER, self._closest(ranked, docs), False
        chosen: list[Sentence] = []
        for s in ranked:
            if len(chosen) == self.max_sentences or s.score < ranked[0].score - self.weights.margin:
                break
            if (kind and not s.typed) or any(
                _near_duplicate(s.text, c.text) or _overlaps(s, c) for c in chosen
            ):
                continue
            chosen.append(s)
        # Quote spans, widened for pronouns, then merged where they touch in one article.
        spans: list[tuple[int, int, int, float]] = []  # (doc, start, end, score)
        for s in chosen:
            start, end = self._widen(s, docs[s.doc])
            for i, (d, a, b, score) in enumerate(spans):
                if d == s.doc and start <= b + _ADJACENT and a <= end + _ADJACENT:
                    spans[i] = (d, min(a, start), max(b, end), score)
                    break
            else:
                spans.append((s.doc, start, end, s.score))
        parts: list[str] = []
        citations: list[Citation] = []
        for d, start, end, score in spans:
            quote = _article_slice(docs[d], start, end)
            citation = _citation(len(citations) + 1, docs[d], quote, start, end, score)
            citations.append(citation)
            parts.append(f"{quote} [{citation.n}]")
        return " ".join(parts), citations, True

    @staticmethod
    def _widen(s: Sentence, doc: Document) -> tuple[int, int]:
        """The quote around a sentence: its predecessor when it opens with a pronoun (so "he"
        is resolvable), and its successor when that one continues with a pronoun ("But he
        also cautioned ..."), since such a follow-up usually completes the statement."""
        before = doc.metadata.get("context_before", "")
        offset = doc.metadata["start"] - len(before)
        text = before + doc.page_content
        spans = [(offset + a, offset + b) for a, b in split_sentences(text)]
        start, end = s.start, s.end
        if _PRONOUN_START.match(s.text):
            previous = [a for a, b in spans if b <= s.start]
            start = previous[-1] if previous else start
        following = [(a, b) for a, b in spans if a >= s.end]
        if following and _CONTINUATION.match(
            text[following[0][0] - offset : following[0][1] - offset]
        ):
            end = following[0][1]
        return start, end

    def _closest(self, ranked: list[Sentence], docs: Sequence[Document]) -> list[Citation]:
        best: dict[int, Sentence] = {}
        for s in ranked:
            best.setdefault(s.doc, s)
        picks = sorted(best.values(), key=lambda s: -s.score)[:3]
        return [
            _citation(i + 1, docs[s.doc], s.text, s.start, s.end, s.score)
            for i, s in enumerate(picks)
        ]


def _entities(question: str) -> set[str]:
    """Tokens of the names in a question (capitalised words after its first word)."""
    words = re.findall(r"[\w&'.-]+", question)[1:]
    names = [w for w in words if w[:1].isupper() and w.lower() not in _STOP_CAPS]
    return set(tokenize(" ".join(names)))


def _last_sentence(text: str) -> str:
    spans = split_sentences(text)
    return text[spans[-1][0] : spans[-1][1]] if spans else ""


def _near_duplicate(a: str, b: str) -> bool:
    ta, tb = set(tokenize(a)), set(tokenize(b))
    if not ta or not tb:
        return False
    return len(ta & tb) / len(ta | tb) > 0.6


def _overlaps(a: Sentence, b: Sentence) -> bool:
    return a.doc == b.doc and a.start < b.end and b.start < a.end
