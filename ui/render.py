"""HTML for answers, citations, sync summaries and index status, built only from escaped text.

Article text and LLM output are untrusted: an article may contain ``<script>``, ``<img
src=https://tracker/...>`` or Markdown links meant to leak the conversation. Everything that
comes from data goes through ``esc`` and the only markup here is the fixed tags written below,
so the browser gets no tag, attribute or URL that an article chose. The one exception is the
article's own URL, linked only when it is plain http(s), with ``noopener noreferrer``.
The chatbot is used with Markdown rendering off (its content is this HTML), so Markdown syntax
in an article (``![x](http://...)``, autolinks) also stays text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from assistant.markers import CANONICAL as CANONICAL_MARKER
from assistant.types import Answer, Citation
from ui.messages import display_name, redact

_URL_OK = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces or controls


@dataclass
class Turn:
    """One question of the conversation and what came back (streamed text, answer or error)."""

    question: str
    partial: str = ""
    answer: Answer | None = None
    error: str | None = None
    # The finished turn's two chat messages, rendered once: streaming into the last turn then
    # costs one message, not the whole conversation. Keyed by position (the [n] link ids).
    rendered: tuple[int, list[dict[str, str]]] | None = field(
        default=None, compare=False, repr=False
    )


def esc(text: object) -> str:
    """HTML-escape any value (quotes too, so it is safe inside attributes)."""
    return html.escape("" if text is None else str(text), quote=True)


def _lines(escaped: str) -> str:
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


def cite_id(turn: int, n: int) -> str:
    """DOM id of citation ``n`` of answer ``turn``; the [n] links in the chat point here."""
    return f"aa-cite-{turn}-{n}"


def safe_url(url: str | None) -> str | None:
    """The URL if it is a plain http(s) URL with a host, else None (then shown as text only)."""
    if not url or not _URL_OK.match(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


# --- chat messages ---------------------------------------------------------------------------
def question_html(question: str) -> str:
    return _lines(esc(question))


def answer_html(answer: Answer, turn: int) -> str:
    """The answer text with each resolvable ``[n]`` turned into a link to its citation card,
    and the short answer phrase (``Answer.short``) in bold."""
    known = {c.n: c for c in answer.citations}

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        cited = known.get(n)
        if cited is None:
            return match.group(0)
        return (
            f'<a class="aa-cite-link" href="#{cite_id(turn, n)}" '
            f'title="{esc(cited.title)}">[{n}]</a>'
        )

    escaped = esc(answer.text)
    if answer.answered and answer.short:  # the answer phrase, bold inside its sentence
        phrase = esc(answer.short)
        at = escaped.find(phrase)
        if at >= 0:
            end = at + len(phrase)
            escaped = f"{escaped[:at]}<strong>{phrase}</strong>{escaped[end:]}"
    body = _lines(CANONICAL_MARKER.sub(link, escaped))
    if not answer.answered and answer.citations:
        body += " (The closest passages are listed under Sources.)"
    return body


def streaming_html(partial: str) -> str:
    """Text received so far (citations become links once the final answer arrives)."""
    return _lines(esc(partial)) + " ▍" if partial else "<em>Searching the articles…</em>"


def error_html(message: str) -> str:
    return f"Could not answer: {_lines(esc(message))}"


def chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """Gradio 6 chatbot messages (OpenAI-style dicts) for the whole conversation."""
    messages: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        if turn.rendered is not None and turn.rendered[0] == i:
            messages.extend(dict(m) for m in turn.rendered[1])
            continue
        pair = [{"role": "user", "content": question_html(turn.question)}]
        if turn.answer is not None:
            content = answer_html(turn.answer, i)
        elif turn.error is not None:
            content = error_html(turn.error)
        else:
            content = streaming_html(turn.partial)
        pair.append({"role": "assistant", "content": content})
        if turn.answer is not None or turn.error is not None:
            turn.rendered = (i, pair)
        messages.extend(dict(m) for m in pair)
    return messages


# --- citations and the sources panel ---------------------------------------------------------
def passage_html(citation: Citation) -> str:
    """The retrieved passage with the cited quote inside ``<mark>``, all text escaped."""
    passage = citation.passage or citation.quote
    quote = citation.quote
    at = citation.start - citation.passage_start
    if not (quote and at >= 0 and passage[at : at + len(quote)] == quote):
        at = passage.find(quote) if quote else -1
    if at < 0:
        if quote and quote != passage:
            return f"<mark>{_lines(esc(quote))}</mark><br>{_lines(esc(passage))}"
        return _lines(esc(passage))
    before, marked, after = passage[:at], passage[at : at + len(quote)], passage[at + len(quote) :]
    return f"{_lines(esc(before))}<mark>{_lines(esc(marked))}</mark>{_lines(esc(after))}"


def _meta_html(citation: Citation) -> str:
    parts = [
        esc(citation.source) if citation.source else "<em>source unknown</em>",
        esc(citation.published) if citation.published else "<em>date unknown</em>",
    ]
    link = safe_url(citation.url)
    if link:
        parts.append(
            f'<a href="{esc(link)}" target="_blank" rel="noopener noreferrer" '
            f'referrerpolicy="no-referrer">{esc(link)}</a>'
        )
    elif citation.url:
        parts.append(f"<code>{esc(citation.url)}</code>")
    return " · ".join(parts)


def citation_card(citation: Citation, turn: int) -> str:
    """Title, source, date and highlighted passage of one citation."""
    return (
        f'<article class="aa-card" id="{cite_id(turn, citation.n)}" data-n="{citation.n}">'
        f'<header><span class="aa-num">[{citation.n}]</span> '
        f'<span class="aa-title">{esc(citation.title)}</span></header>'
        f'<div class="aa-meta">{_meta_html(citation)}</div>'
        f'<div class="aa-passage">{passage_html(citation)}</div>'
        "</article>"
    )


def sources_html(turns: Sequence[Turn]) -> str:
    """The sources panel: one section per answered turn, the latest one shown.

    Older turns stay in the page (hidden) so that clicking an ``[n]`` in an earlier answer can
    still show that answer's passage.
    """
    sections = []
    last = len(turns) - 1
    for i, turn in enumerate(turns):
        answer = turn.answer
        if answer is None:
            continue
        if answer.answered:
            heading = f"Passages cited for “{esc(turn.question)}”"
        else:
            heading = f"No answer found; closest passages for “{esc(turn.question)}”"
        cards = "".join(citation_card(c, i) for c in answer.citations) or (
            "<p class='aa-empty'>No passage matched.</p>"
        )
        hidden = "" if i == last else " aa-hidden"
        sections.append(
            f'<section class="aa-turn{hidden}" data-turn="{i}"><h4>{heading}</h4>{cards}</section>'
        )
    # How many turns are finished (answered or failed): lets tests and scripts wait for it.
    done = sum(1 for t in turns if t.answer is not None or t.error is not None)
    body = "".join(sections) or (
        "<p class='aa-empty'>Ask a question: the passages each answer cites appear here. "
        "Click a [n] marker to open its passage.</p>"
    )
    return f"<div class='aa-sources' data-finished='{done}'>{body}</div>"


# --- sync summary and index status -----------------------------------------------------------
def sync_summary_html(
    report: object | None,
    problems: Sequence[tuple[str, str]],
    error: str | None = None,
    home: Path | None = None,
) -> str:
    """What an upload/URL sync did: counts, then each refused or failed source with its reason.

    ``problems`` are already in the words a UI user should see (the handler names files, not
    server paths); duplicates come from ``report`` and are cut down here the same way.
    """
    rows: list[str] = []
    if error:
        rows.append(f"<p class='aa-bad'><strong>Sync failed:</strong> {esc(error)}</p>")
    if report is not None:
        counts = [
            (name, getattr(report, name, 0))
            for name in ("added", "updated", "unchanged", "removed")
        ]
        text = ", ".join(f"{value} {name}" for name, value in counts)
        rows.append(
            f"<p><strong>Index updated:</strong> {esc(text)} "
            f"({esc(getattr(report, 'chunks_embedded', 0))} passages embedded).</p>"
        )
    if problems:
        items = "".join(
            f"<li><strong>{esc(name)}</strong>: {esc(reason)}</li>" for name, reason in problems
        )
        rows.append(f"<p class='aa-bad'><strong>Not added:</strong></p><ul>{items}</ul>")
    dups = getattr(report, "duplicates", []) if report is not None else []
    if dups:
        roots = (home,) if home is not None else ()
        items = "".join(
            f"<li>{esc(display_name(d.path))}: {esc(redact(d.error, *roots))}</li>" for d in dups
        )
        rows.append(
            "<p><strong>Duplicates (same text as another article; answers cite one copy):"
            f"</strong></p><ul>{items}</ul>"
        )
    return f"<div class='aa-summary'>{''.join(rows)}</div>"


def status_html(status: object) -> str:
    """Article and chunk counts, embedding model, chunking and store of the served index."""
    fields = [
        ("Articles", "articles"),
        ("Passages (chunks)", "chunks"),
        ("Embedding model", "embedding_model"),
        ("Chunking", "chunking"),
        ("Store", "store"),
    ]
    values = {name: getattr(status, name, "") or "—" for _, name in fields}
    # Where the store lives (a server path or an internal address) is not the user's business.
    values["store"] = "Chroma server" if str(values["store"]).startswith("http") else "Chroma"
    cells = "".join(
        f"<div><dt>{esc(label)}</dt><dd>{esc(values[name])}</dd></div>" for label, name in fields
    )
    return f"<dl class='aa-status'>{cells}</dl>"
