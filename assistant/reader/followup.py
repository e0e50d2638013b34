"""Follow-up questions without an LLM: borrow context from the previous question only when
this one cannot stand alone.

Two cases need it: a third-person pronoun with no name to resolve it ("What did he say?") and
an ellipsis with no verb ("And China?", "What about Japan?"). The pronoun case borrows the
previous question's names (whole names, never word stems, so retrieval matches them as
written); the ellipsis case is the previous question with the new name put in place of the
previous name of the same kind. Anything else is left exactly as asked.
"""

from __future__ import annotations

from assistant.reader.analysis import analyse, nlp

_MAX_ELLIPSIS_TOKENS = 6  # "And what about the Chinese side?" is still a fragment


def condense(question: str, previous: str) -> str:
    """The question to retrieve and read with, given the previous user question."""
    if not previous.strip():
        return question
    now = analyse(question)
    doc = nlp()(question)
    has_verb = any(t.pos_ in ("VERB", "AUX") for t in doc)
    if not has_verb and len(doc) <= _MAX_ELLIPSIS_TOKENS:
        return _substitute(question, previous)
    if now.pronoun and not now.subjects:
        before = analyse(previous)
        names = [n for n in before.subjects if n.lower() not in question.lower()]
        if names:
            return f"{question} ({', '.join(names)})"
    return question


def _substitute(fragment: str, previous: str) -> str:
    """ "And China?" after "What did the US say about Japan?" -> "... about China?"."""
    frag = nlp()(fragment)
    prev = nlp()(previous)
    if not frag.ents:
        return f"{previous.rstrip(' ?')} {fragment.strip(' ?')}?"
    new = frag.ents[0]
    same = [e for e in prev.ents if e.label_ == new.label_]
    if not same:
        return f"{previous.rstrip(' ?')} {new.text}?"
    old = same[-1]
    return previous[: old.start_char] + new.text + previous[old.end_char :]
