"""The answer chain in LCEL: condense -> retrieve -> answer, as named runnables.

``build_chain(index)`` gives a runnable whose ``stream`` yields ``AnswerDelta`` chunks (text
as it is produced, the final ``Answer`` last) and whose ``invoke`` gives the merged delta, so
streaming, batching and tracing work as LangChain users expect.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from langchain_core.documents import Document
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough

from assistant.markers import defang
from assistant.retrieval import HybridRetriever
from assistant.settings import Settings
from assistant.timeline import date_answer
from assistant.types import NO_ANSWER, Answer, Citation

log = logging.getLogger(__name__)

#: The decline given for an LLM reply that cites no passage. The reply itself is not shown: the
#: promise is that every answer rests on a cited passage, and it rests on none.
UNCITED = (
    f"{NO_ANSWER} The model's reply cited none of the passages it was given, so it is not "
    "shown as an answer."
)


@dataclass
class AnswerDelta:
    """A streamed piece of an answer; adding deltas concatenates text, keeps the last Answer."""

    text: str = ""
    answer: Answer | None = None

    def __add__(self, other: AnswerDelta) -> AnswerDelta:
        return AnswerDelta(self.text + other.text, other.answer or self.answer)


def normalise_history(history: Any) -> list[tuple[str, str]]:
    """(user, assistant) pairs from pairs or OpenAI-style message dicts."""
    if not history:
        return []
    pairs: list[tuple[str, str]] = []
    pending_user: str | None = None
    for item in history:
        if isinstance(item, dict):
            role, content = item.get("role"), item.get("content")
            text = content if isinstance(content, str) else str(content or "")
            if role == "user":
                pending_user = text
            elif role == "assistant" and pending_user is not None:
                pairs.append((pending_user, text))
                pending_user = None
        else:
            user, bot = item
            pairs.append((str(user), str(bot or "")))
    return pairs


def _carry_terms(question: str, history: list[tuple[str, str]]) -> str:
    """Extractive follow-ups: borrow the previous question's names only when this one needs
    them (see ``assistant.reader.followup``)."""
    if not history:
        return question
    from assistant.reader.followup import condense

    return condense(question, history[-1][0])


# A "[7]" inside an article reads as a citation marker once the extractive answer quotes the
# sentence (and the UI would link it to citation 7, or to nothing). In the answer text it
# becomes "(7)", as in the LLM prompt; the citations keep the article's own words.


def defang_quotes(text: str, citations: Sequence[Citation]) -> str:
    """``text`` with the citation-like markers inside each quoted passage neutralised."""
    out: list[str] = []
    pos = 0
    for c in citations:
        at = text.find(c.quote, pos) if c.quote else -1
        if at < 0:
            continue
        out += [text[pos:at], defang(c.quote)]
        pos = at + len(c.quote)
    return "".join(out) + text[pos:]


def _llm_citations(docs: Sequence[Document], numbers: list[int]) -> list[Citation]:
    """An LLM cites whole passages: the quote is the retrieved chunk itself."""
    from assistant.reader.citations import passage_citation

    out = []
    for n in numbers:
        doc = docs[n - 1]
        start, end = doc.metadata["start"], doc.metadata["end"]
        out.append(passage_citation(n, doc, doc.page_content, start, end, doc.page_content, start))
    return out


ReadAnswer = Callable[[str, Sequence[Document]], tuple[str, list[Citation], bool, str | None]]


def _extractive_reader(index: Any, answerer: str) -> ReadAnswer:
    """The no-LLM answerer the settings name, as one function: (text, citations, answered,
    short answer phrase or None)."""
    if answerer == "fitted":
        from assistant.reader.reader import Reader

        reader = Reader(index.embedder)

        def fitted(
            query: str, docs: Sequence[Document]
        ) -> tuple[str, list[Citation], bool, str | None]:
            read = reader.answer(query, docs)
            return read.text, read.citations, read.answered, read.short

        return fitted
    from assistant.extractive import ExtractiveAnswerer

    scorer = ExtractiveAnswerer(index.embedder)

    def extractive(
        query: str, docs: Sequence[Document]
    ) -> tuple[str, list[Citation], bool, str | None]:
        text, citations, answered = scorer.answer(query, docs)
        return text, citations, answered, None

    return extractive


def answer_settings(index: Any) -> Settings:
    """The answering settings of ``index``: the ``Settings`` it was opened with, or, for an
    index opened with the index layer's settings alone, those plus the answering defaults (and
    ``ASSISTANT_*`` variables), so every answer reads one typed settings object."""
    if isinstance(index.settings, Settings):
        return index.settings
    return Settings(**index.settings.model_dump())


def answer_retriever(
    index: Any,
    *,
    k: int = 5,
    sources: list[str] | None = None,
    published_after: date | None = None,
    published_before: date | None = None,
    as_of: date | None = None,
) -> HybridRetriever:
    """The retriever answers read from: the index's recency, age and date-window settings, as
    of ``as_of`` (default today). Measuring scripts use it too, so what they calibrate on is
    what ``answer`` retrieves."""
    settings = answer_settings(index)
    return HybridRetriever(
        index=index,
        k=k,
        sources=sources,
        published_after=published_after,
        published_before=published_before,
        as_of=as_of or date.today(),
        recency=settings.recency,
        age_prior=settings.age_prior,
        age_grace_days=settings.age_grace_days,
        date_window=settings.date_window,
    )


def build_chain(
    index: Any,
    *,
    k: int = 5,
    llm: Any = None,
    sources: list[str] | None = None,
    published_after: date | None = None,
    published_before: date | None = None,
    answerer: str = "extractive",
    as_of: date | None = None,
) -> Runnable:
    """Input: ``{"question": str, "history": [...]}``; output: ``AnswerDelta`` chunks.

    ``answerer`` picks the extractive reader when no ``llm`` is given: ``"extractive"`` (the
    sentence scorer) or ``"fitted"`` (``assistant.reader``: question analysis and a fitted
    candidate model). Both return the same ``Answer``; the setting exists so they can be
    measured side by side on the same index (``ASSISTANT_ANSWERER``). ``as_of`` (default
    today): nothing published after it is retrieved; see assistant/dates.py.
    """
    as_of = as_of or date.today()
    retriever = answer_retriever(
        index,
        k=k,
        sources=sources,
        published_after=published_after,
        published_before=published_before,
        as_of=as_of,
    )
    read_answer = _extractive_reader(index, answerer)

    def dated(answer: Answer, query: str, docs: list[Document]) -> Answer:
        # The changed-story check re-reads the passages extractively, so only in that mode; an
        # LLM is told by its prompt to give both dated answers itself.
        return date_answer(
            answer,
            as_of=as_of,
            window=retriever.window_for(query),
            docs=docs,
            answer_fn=(lambda q, d: read_answer(q, d)[:3]) if llm is None else None,
            query=query,
        )

    def condense(inputs: dict[str, Any]) -> str:
        history = normalise_history(inputs.get("history"))
        if llm is not None and history:
            from assistant.llm import condense_question

            return condense_question(llm, inputs["question"], history)
        return _carry_terms(inputs["question"], history)

    def retrieve(inputs: dict[str, Any]) -> list[Document]:
        return retriever.invoke(inputs["query"])

    def answer(inputs: dict[str, Any]) -> Iterator[AnswerDelta]:
        question, docs = inputs["question"], inputs["docs"]
        if llm is None:
            text, citations, answered, short = read_answer(inputs["query"], docs)
            text = defang_quotes(text, citations)
            final = dated(
                Answer(question, text, answered, citations, "extractive", short),
                inputs["query"],
                docs,
            )
            yield AnswerDelta(final.text)
            yield AnswerDelta("", final)
            return
        from assistant.llm import check_markers, stream_llm_answer

        raw = ""
        for delta in stream_llm_answer(
            llm, inputs["query"], docs, normalise_history(inputs.get("history"))
        ):
            raw += delta
            yield AnswerDelta(delta)
        text, numbers = check_markers(raw.strip(), len(docs))
        answered = bool(text) and not text.startswith(NO_ANSWER)
        citations = _llm_citations(docs, numbers)
        if answered and not numbers:
            # Every answer must rest on a passage it cites; a reply that cites none (or only
            # passages it was never given) is the model's own word, so it is not an answer.
            log.warning("declined an LLM reply that cites no passage: %r", text[:500])
            answered, text = False, UNCITED
        elif not answered:
            text = NO_ANSWER
        if not answered:  # a decline shows the closest passages instead
            citations = _llm_citations(docs, list(range(1, min(3, len(docs)) + 1)))
        yield AnswerDelta(
            "", dated(Answer(question, text, answered, citations, "llm"), inputs["query"], docs)
        )

    return (
        RunnablePassthrough.assign(query=RunnableLambda(condense).with_config(run_name="condense"))
        | RunnablePassthrough.assign(docs=RunnableLambda(retrieve).with_config(run_name="retrieve"))
        | RunnableLambda(answer).with_config(run_name="answer")
    )


def run_chain(
    index: Any,
    question: str,
    history: Any,
    *,
    k: int,
    sources: list[str] | None = None,
    published_after: date | None = None,
    published_before: date | None = None,
    as_of: date | None = None,
) -> Iterator[str | Answer]:
    """Validate the question, run the chain, yield text deltas then the final Answer."""
    from assistant.questions import clean_question

    question = clean_question(question)
    llm = None
    if index.settings.llm:
        from assistant.llm import make_chat_model

        llm = make_chat_model(index.settings)
    chain = build_chain(
        index,
        k=k,
        llm=llm,
        sources=sources,
        published_after=published_after,
        published_before=published_before,
        answerer=answer_settings(index).answerer,
        as_of=as_of,
    )
    final: Answer | None = None
    for delta in chain.stream({"question": question, "history": history or []}):
        if delta.text:
            yield delta.text
        if delta.answer is not None:
            final = delta.answer
    assert final is not None
    yield final
