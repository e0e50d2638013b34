"""Answer candidates: the sentences of the retrieved passages (and their neighbours and
headlines), and inside them the spans of the type the question asks for.

The retriever hands over each chunk with up to 400 characters of article text on either side;
the answer often sits in the sentence next to the one that matched, so every whole sentence
of that window is a candidate. A headline that the article text does not repeat is a
candidate too ("... is green lit for a second season" lives only there in some news feeds).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from langchain_core.documents import Document

from assistant.reader.analysis import ENTITY_LABELS, QuestionAnalysis
from assistant.wordweights import term_weight
from index.lexical import stem, tokenize
from index.sentences import split_sentences

_WORD = re.compile(r"[A-Za-z][A-Za-z'&-]*|\d[\d,.]*")
_PRONOUN_START = re.compile(
    r"^\W*(?:but |and |however,? |yet |so )?(?:he|she|they|it|this|that|these|those|his|her|"
    r"their|its)\b",
    re.IGNORECASE,
)


#: Answer types a noun phrase can fill (the numeric and date types want a value).
_PHRASE_TYPES = ("noun", "org", "person", "place")


@dataclass
class Unit:
    """One candidate sentence. ``start``/``end`` are offsets in the article text (a headline
    that is not in the text has ``start == end == 0``)."""

    doc: int
    rank: int
    article_id: str
    start: int
    end: int
    text: str
    previous: str = ""
    prev_start: int = 0
    following: str = ""
    headline: bool = False
    in_chunk: bool = True
    title: str = ""
    prefilter: float = 0.0
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (char a, b, label)


def question_terms(analysis: QuestionAnalysis) -> dict[str, float]:
    """Stemmed content terms of the question and their weights."""
    out: dict[str, float] = {}
    for word in analysis.terms:
        for tok in tokenize(word):
            out[tok] = max(out.get(tok, 0.0), term_weight(word))
    return out


def units(docs: Sequence[Document]) -> list[Unit]:
    """Every whole sentence in each retrieved window, once, plus unrepeated headlines."""
    out: list[Unit] = []
    seen: set[tuple[str, int]] = set()
    titles: set[tuple[str, str]] = set()
    for d, doc in enumerate(docs):
        m = doc.metadata
        before, after = m.get("context_before", ""), m.get("context_after", "")
        text = before + doc.page_content + after
        offset = m["start"] - len(before)
        spans = split_sentences(text)
        chunk_a, chunk_b = len(before), len(before) + len(doc.page_content)
        title = m.get("title") or ""
        for i, (a, b) in enumerate(spans):
            if i == 0 and offset > 0 and a < len(before):
                continue  # the window may start mid-sentence
            if i == len(spans) - 1 and len(after) >= 400 and b > chunk_b:
                continue  # and end mid-sentence
            key = (m["article_id"], offset + a)
            if key in seen:
                continue
            seen.add(key)
            out.append(
                Unit(
                    doc=d,
                    rank=d,
                    article_id=m["article_id"],
                    start=offset + a,
                    end=offset + b,
                    text=text[a:b],
                    previous=text[spans[i - 1][0] : spans[i - 1][1]] if i > 0 else "",
                    prev_start=offset + spans[i - 1][0] if i > 0 else 0,
                    following=text[spans[i + 1][0] : spans[i + 1][1]] if i + 1 < len(spans) else "",
                    in_chunk=a < chunk_b and b > chunk_a,
                    title=title,
                )
            )
        head = (m["article_id"], title)
        if title and head not in titles and not text.lstrip().startswith(title.strip()):
            titles.add(head)
            out.append(
                Unit(d, d, m["article_id"], 0, 0, title, headline=True, in_chunk=False, title="")
            )
    return out


def pronoun_start(text: str) -> bool:
    """Does the sentence open with a pronoun whose referent is in the sentence before?"""
    return bool(_PRONOUN_START.match(text))


def coverage(terms: dict[str, float], text: str) -> float:
    """Weighted share of the question's terms that ``text`` contains."""
    total = sum(terms.values())
    if not total:
        return 0.0
    toks = set(tokenize(text))
    return sum(w for t, w in terms.items() if t in toks) / total


def prefilter(terms: dict[str, float], unit: Unit) -> float:
    """A cheap score that decides which sentences are worth parsing. It ignores the passage's
    retrieval rank (a tie-break only), so an unrelated story ranked above the right passage
    does not push the right sentence out of the parsed few."""
    own = coverage(terms, unit.text)
    ctx = coverage(terms, f"{unit.previous} {unit.title}") if not unit.headline else 0.0
    return own + 0.5 * ctx


def typed_spans(sent, analysis: QuestionAnalysis) -> list[tuple[int, int, str]]:  # type: ignore[no-untyped-def]
    """Spans of a parsed sentence (a spaCy ``Span``/``Doc``) that could fill the slot:
    entities of the wanted labels (numbers among them), and, for a question that wants a thing
    or a name (``_PHRASE_TYPES``), noun phrases headed by the focus noun; minus anything the
    question already says. Offsets are relative to the sentence."""
    question = analysis.text.lower()
    q_stems = {stem(w.lower()) for w in _WORD.findall(analysis.text)}
    base = getattr(sent, "start_char", 0)
    out: list[tuple[int, int, str]] = []
    wanted = ENTITY_LABELS.get(analysis.answer_type)
    for ent in sent.ents:
        if wanted is not None and ent.label_ not in wanted:
            continue
        if analysis.answer_type == "noun" and ent.label_ in ("CARDINAL", "ORDINAL"):
            continue
        if _echo(ent.text, question, q_stems):
            continue
        out.append((ent.start_char - base, ent.end_char - base, ent.label_))
    # A noun phrase answers a question for a thing or a name; "how many consoles" wants the
    # number, so a phrase headed by "console" is not a candidate answer there.
    if analysis.answer_type in _PHRASE_TYPES:
        for chunk in _noun_chunks(sent):
            if analysis.focus and chunk.root.lemma_.lower() == analysis.focus:
                if not _echo(chunk.text, question, q_stems):
                    out.append((chunk.start_char - base, chunk.end_char - base, "NP"))
            elif (
                analysis.answer_type == "noun"
                and chunk.root.pos_ in ("PROPN", "NOUN")
                and len(chunk) > 1
                and not _echo(chunk.text, question, q_stems)
            ):
                out.append((chunk.start_char - base, chunk.end_char - base, "np"))
    return out


def _noun_chunks(sent):  # type: ignore[no-untyped-def]
    try:
        return list(sent.noun_chunks)
    except (ValueError, AttributeError):
        return []


def _echo(span: str, question: str, q_stems: set[str]) -> bool:
    """The span is already in the question (so it cannot be what the question asks)."""
    if span.lower() in question:
        return True
    words = [stem(w.lower()) for w in _WORD.findall(span)]
    content = [w for w in words if w not in ("the", "a", "an", "of")]
    return bool(content) and all(w in q_stems for w in content)


def focus_attached(doc, a: int, b: int, focus: str | None) -> bool:  # type: ignore[no-untyped-def]
    """Is the span at characters ``a``-``b`` of a parsed sentence tied to the question's focus
    noun by the parse: the number that counts it ("200,000 *consoles*", "three million of the
    consoles"), the name in apposition ("the *company* Enron"), or a phrase headed by it?"""
    toks = span_tokens(doc, a, b)
    if not focus or toks is None:
        return False
    near = {*toks, *(t.head for t in toks), *(t.head.head for t in toks)}
    near |= {c for t in toks for c in t.children}
    # "three million of the consoles": the focus follows the span within a short of-phrase
    after = doc[toks.end : toks.end + 3]
    return any(t.lemma_.lower() == focus for t in (*near, *after))


def span_tokens(doc, a: int, b: int):  # type: ignore[no-untyped-def]
    """The tokens of a parsed sentence that characters ``a``-``b`` cover (spaCy's own
    alignment), or None for an empty span."""
    span = doc.char_span(a, b, alignment_mode="expand")
    return span if span is not None and len(span) else None
