"""Features of a candidate sentence, all independent of how many articles are indexed.

Each value is a share, a cosine or a flag of the candidate alone: none uses corpus statistics
(IDF, BM25 scores), the retrieval rank of its passage, or a gap to the other candidates, all of
which move when unrelated articles are added (a story about something else pushes the right
passage from rank 1 to rank 3 without changing a word of it). So a fitted threshold means the
same thing over one article and over ten thousand. Question-term weights come from general
English word frequencies (``wordfreq``), not from the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.reader.analysis import ENTITY_LABELS, QuestionAnalysis
from assistant.reader.candidates import (
    Unit,
    coverage,
    focus_attached,
    pronoun_start,
    span_tokens,
    typed_spans,
)
from index.lexical import tokenize

# Tokens of distance a span of a less likely label gives away. A tie-break between spans in
# one sentence, not a score: the fitted model sees only the distance that results.
_OFF_LABEL = 3
# Tokens either side of an answer span that count as its neighbourhood (about a clause).
_WINDOW = 8

FEATURES: tuple[str, ...] = (
    "cov",  # weighted share of question terms in the sentence
    "cov_ctx",  # ... counting the previous sentence (pronoun start) and the headline
    "cov_win",  # ... counting both neighbours
    "miss_rare",  # weight of the rarest question term missing from sentence + context, over
    # the rarest term's weight: the asked-for detail ("spokesperson") is not there
    "dense_sent",  # cosine(question, the sentence with its pronoun's antecedent)
    "typed_q",  # the question wants a short typed phrase
    "type_ok",  # the sentence holds a span of that type the question does not say
    "type_miss",  # typed_q and not type_ok
    "subj",  # share of the question's names in sentence, predecessor or headline
    "subj_sent",  # share of them in the sentence itself
    "subj_none",  # the question names no one
    "subj_role",  # a question name (or a pronoun after it) is the sentence's subject
    "verb",  # the question's main verb (lemma) appears in the sentence
    "focus",  # the focus noun (lemma) appears in the sentence
    "span_near",  # 1 / (1 + token distance of the best span to a question term)
    "span_focus",  # a typed span is tied to the question's focus noun by the parse
    "span_cov",  # weighted share of question terms within a few words of the best span
    "headline",
    "in_chunk",  # in the retrieved chunk rather than its neighbouring context
    "length",  # min(1, tokens / 40)
    "novel",  # share of the sentence's content words the question does not contain
    "quote",  # the sentence quotes someone
)


@dataclass
class Scored:
    """A candidate with its features, best answer span and (after scoring) probability."""

    unit: Unit
    x: np.ndarray
    span: tuple[int, int] | None
    prob: float = 0.0  # the ranker's: is this the sentence to quote?
    support: float = 0.0  # the decline model's: is the question answered if it is quoted?


def context_text(unit: Unit) -> str:
    """The sentence as a reader needs it: with its predecessor when it opens with a pronoun."""
    if unit.previous and pronoun_start(unit.text):
        return f"{unit.previous} {unit.text}"
    return unit.text


def featurize(
    analysis: QuestionAnalysis,
    terms: dict[str, float],
    cands: Sequence[Unit],
    parsed: Sequence,  # spaCy Docs of each candidate's text
    dense_sent: Sequence[float],
) -> list[Scored]:
    """Feature vectors for ``cands`` (parsed and embedded by the caller)."""
    subjects = [s.lower() for s in analysis.subjects]
    subj_toks = [set(tokenize(s)) for s in analysis.subjects]
    q_toks = set(tokenize(analysis.text))
    typed_q = analysis.wants_span
    top_weight = max(terms.values(), default=0.0)
    out: list[Scored] = []
    for unit, doc, sim_sent in zip(cands, parsed, dense_sent, strict=True):
        f: dict[str, float] = {}
        prev = unit.previous if pronoun_start(unit.text) else ""
        f["cov"] = coverage(terms, unit.text)
        f["cov_ctx"] = coverage(terms, f"{unit.text} {prev} {unit.title}")
        f["cov_win"] = coverage(terms, f"{unit.previous} {unit.text} {unit.following}")
        window = set(tokenize(f"{unit.text} {prev} {unit.title}"))
        missing = [w for t, w in terms.items() if t not in window]
        f["miss_rare"] = max(missing, default=0.0) / top_weight if top_weight else 0.0
        f["dense_sent"] = float(sim_sent)
        f["typed_q"] = float(typed_q)
        spans = typed_spans(doc, analysis) if typed_q else []
        f["type_ok"] = float(bool(spans))
        f["type_miss"] = float(typed_q and not spans)
        sent_toks = set(tokenize(unit.text))
        around = set(tokenize(f"{prev} {unit.title}")) | sent_toks
        if subj_toks:
            f["subj"] = sum(bool(s & around) for s in subj_toks) / len(subj_toks)
            f["subj_sent"] = sum(bool(s & sent_toks) for s in subj_toks) / len(subj_toks)
            f["subj_none"] = 0.0
        else:
            f["subj"] = f["subj_sent"] = f["subj_none"] = 1.0
        f["subj_role"] = _subject_role(doc, subjects, bool(prev))
        lemmas = {t.lemma_.lower() for t in doc}
        f["verb"] = float(bool(analysis.verb) and analysis.verb in lemmas)
        f["focus"] = float(bool(analysis.focus) and analysis.focus in lemmas)
        tied = [s for s in spans if focus_attached(doc, s[0], s[1], analysis.focus)]
        f["span_focus"] = float(bool(tied))
        labels = ENTITY_LABELS.get(analysis.answer_type)
        span, dist = _best_span(doc, tied or spans, terms, labels)
        f["span_near"] = 1.0 / (1.0 + dist) if span is not None else 0.0
        f["span_cov"] = _span_coverage(doc, span, terms) if span is not None else 0.0
        f["headline"] = float(unit.headline)
        f["in_chunk"] = float(unit.in_chunk)
        f["length"] = min(1.0, len(doc) / 40.0)
        content = [t for t in sent_toks]
        f["novel"] = sum(t not in q_toks for t in content) / len(content) if content else 0.0
        f["quote"] = float(any(c in unit.text for c in '"“”'))
        out.append(Scored(unit, np.array([f[n] for n in FEATURES], dtype=float), span))
    return out


def _span_coverage(doc, span: tuple[int, int], terms: dict[str, float]) -> float:  # type: ignore[no-untyped-def]
    """Weighted share of the question's terms within ``_WINDOW`` tokens of the answer span: the
    asked-for value sits next to the words that say what it is ("shipped 200,000 consoles")."""
    toks = span_tokens(doc, *span)
    if toks is None:
        return 0.0
    return coverage(terms, doc[max(0, toks.start - _WINDOW) : toks.end + _WINDOW].text)


def _subject_role(doc, subjects: list[str], pronoun_led: bool) -> float:  # type: ignore[no-untyped-def]
    """1 when a question name is the grammatical subject of the sentence ("Bessent said"),
    or the subject is a pronoun standing for the predecessor's name; 0.5 when no name asked."""
    if not subjects:
        return 0.5
    for t in doc:
        if t.dep_ not in ("nsubj", "nsubjpass"):
            continue
        phrase = " ".join(x.text for x in t.subtree).lower()
        if any(s in phrase or phrase in s for s in subjects):
            return 1.0
        if pronoun_led and t.pos_ == "PRON":
            return 1.0
    return 0.0


def _best_span(doc, spans, terms: dict[str, float], labels):  # type: ignore[no-untyped-def]
    """The typed span closest (in tokens) to a question term in the sentence; a span of the
    type's most likely label (a PERSON for "who") counts as a few tokens closer."""
    if not spans:
        return None, 99
    hits = [t.i for t in doc if any(k in terms for k in tokenize(t.text))]
    best, best_d = None, 99
    for a, b, label in spans:
        tok_a = next((t.i for t in doc if t.idx >= a), 0)
        tok_b = next((t.i for t in doc if t.idx >= b), len(doc))
        d = min((min(abs(h - tok_a), abs(h - tok_b)) for h in hits), default=30)
        d += 0 if not labels or label in (labels[0], "NP") else _OFF_LABEL
        if d < best_d:
            best, best_d = (a, b), d
    return best, best_d
