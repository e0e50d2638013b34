"""The Gradio 6 app: Chat, Add articles, Indexed articles. ``launch`` is what `assistant ui` runs.

Only the public API (``assistant.api``) is called; the logic lives in ``ui.handlers`` and the
HTML in ``ui.render`` (both testable without a browser). Safe defaults: loopback bind, optional
login, upload size cap enforced by Gradio itself, no extra served paths, no analytics.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import gradio as gr
from pydantic import SecretStr

from assistant.errors import ConfigError
from assistant.settings import Settings
from index.store import empty_status
from ui import handlers
from ui.assets import APP_CSS, CITE_JS, SOURCES_CSS
from ui.listing import ArticleListing, Snapshot, filter_rows
from ui.messages import user_message
from ui.render import Turn, esc, sources_html, status_html

log = logging.getLogger(__name__)
_PROGRESS = gr.Progress()  # Gradio injects progress into a parameter with this default


def _index_views(
    settings: Settings, listing: ArticleListing, query: str = ""
) -> tuple[str, dict[str, Any], Any]:
    """(status HTML, article table, source filter update), from the cached listing."""
    try:
        snap = listing.snapshot()
    except Exception as exc:
        return (
            f"<p class='aa-bad'>{esc(user_message(exc, settings.home))}</p>",
            {"headers": handlers.ARTICLE_HEADERS, "data": []},
            gr.skip(),
        )
    status = status_html(snap.status if snap.status is not None else empty_status(settings))
    return status, _table(settings, snap, query), gr.update(choices=snap.sources)


def _table(settings: Settings, snap: Snapshot, query: str) -> Any:
    """The matching rows, at most ``ui_max_rows`` of them: a browser table of thousands of rows
    takes seconds to draw on every keystroke, and nobody reads past a screenful anyway."""
    rows = filter_rows(snap.rows, snap.haystacks, query)
    shown = rows[: settings.ui_max_rows]
    if len(shown) < len(rows):
        label = f"{len(shown):,} of {len(rows):,} articles shown; type in the search box to narrow"
    else:
        label = f"{len(rows):,} article{'' if len(rows) == 1 else 's'}"
    return gr.update(value={"headers": handlers.ARTICLE_HEADERS, "data": shown}, label=label)


def build_app(settings: Settings) -> gr.Blocks:
    """The whole UI for ``settings`` (its ``home`` is the index that is served and grown)."""
    suffixes = ", ".join(handlers.supported_suffixes())
    listing = ArticleListing(settings)
    # delete_cache: Gradio's temp copies of uploads go after an hour (ours are in home/uploads).
    with gr.Blocks(
        title="Article Assistant", analytics_enabled=False, delete_cache=(3600, 3600)
    ) as demo:
        gr.Markdown(
            "## Article Assistant\nAsk about the indexed news articles. Every sentence "
            "of an answer cites its passage: click a **[n]** to read it."
        )
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            elem_id="aa-chat",
                            height=460,
                            render_markdown=False,
                            sanitize_html=True,
                            allow_tags=False,
                            feedback_options=None,
                            buttons=["copy"],
                            placeholder="Ask something about the articles, e.g. "
                            "“What did Bessent threaten?”",
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                show_label=False,
                                placeholder="Your question…",
                                scale=5,
                                elem_id="aa-question",
                                max_length=2000,
                                autofocus=True,
                            )
                            ask_btn = gr.Button("Ask", variant="primary", scale=1, elem_id="aa-ask")
                        new_chat = gr.Button("New conversation", size="sm")
                    with gr.Column(scale=2):
                        gr.Markdown("### Sources")
                        sources = gr.HTML(
                            sources_html([]),
                            elem_id="aa-sources",
                            js_on_load=CITE_JS,
                            css_template=SOURCES_CSS,
                            max_height=640,
                        )
                with gr.Accordion("Answer settings", open=False):
                    with gr.Row():
                        k = gr.Slider(
                            1, 20, value=settings.k, step=1, label="Passages retrieved per question"
                        )
                        choices = handlers.mode_choices(settings)
                        mode = gr.Radio(
                            choices,
                            value=choices[-1][1],
                            label="Answer mode",
                            interactive=len(choices) > 1,
                            info=None
                            if settings.llm
                            else "Set ASSISTANT_LLM (e.g. ollama:llama3.2) to answer with an LLM.",
                        )
                    with gr.Row():
                        source_filter = gr.Dropdown(
                            [],
                            value=[],
                            multiselect=True,
                            label="Only these sources",
                            info="Empty: all sources.",
                        )
                        after = gr.Textbox(label="Published on or after", placeholder="YYYY-MM-DD")
                        before = gr.Textbox(
                            label="Published on or before", placeholder="YYYY-MM-DD"
                        )
                        as_of = gr.Textbox(
                            label="Answer as of",
                            placeholder="YYYY-MM-DD (empty: today)",
                            info="Articles published later are not used.",
                            elem_id="aa-as-of",
                        )
            with gr.Tab("Add articles", id="add"):
                gr.Markdown(
                    f"Upload article files ({suffixes}; at most "
                    f"{settings.max_upload_mb:g} MB each) or paste the URL of an article. "
                    "They are indexed at once and can be asked about right after."
                )
                files = gr.File(
                    file_count="multiple",
                    type="filepath",
                    label="Article files",
                    elem_id="aa-files",
                )
                url = gr.Textbox(label="Article URL", placeholder="https://…", elem_id="aa-url")
                add_btn = gr.Button("Add to the index", variant="primary", elem_id="aa-add")
                summary = gr.HTML(elem_id="aa-summary", css_template=SOURCES_CSS)
            with gr.Tab("Indexed articles", id="indexed"):
                status = gr.HTML(elem_id="aa-status", css_template=SOURCES_CSS)
                with gr.Row():
                    search = gr.Textbox(
                        show_label=False,
                        placeholder="Search titles, sources, dates, files…",
                        scale=4,
                        elem_id="aa-search",
                    )
                    refresh = gr.Button("Refresh", scale=1, size="sm")
                table = gr.Dataframe(
                    headers=handlers.ARTICLE_HEADERS,
                    label="Articles",
                    show_label=True,
                    interactive=False,
                    wrap=True,
                    elem_id="aa-table",
                    datatype=["str", "str", "str", "number", "str"],
                )

        def on_ask(
            q: str,
            state: list[Turn],
            k_: float,
            mode_: str,
            srcs: list[str] | None,
            after_: str,
            before_: str,
            as_of_: str,
        ) -> Iterator[tuple[Any, ...]]:
            options = handlers.ChatOptions(
                int(k_), mode_, list(srcs or []), after_, before_, as_of_
            )
            first = True
            refresh_s = settings.ui_stream_refresh_s
            for messages, panel, new_state in handlers.ask(
                q, state, options, settings, refresh_s=refresh_s
            ):
                # While text streams in, only the chat changes: the sources panel and the
                # conversation state are sent at the start and the end, not per fragment.
                yield (
                    messages,
                    gr.skip() if panel is None else panel,
                    gr.skip() if new_state is None else new_state,
                    "" if first else gr.skip(),
                )
                first = False

        ask_inputs = [question, turns, k, mode, source_filter, after, before, as_of]
        ask_outputs = [chatbot, sources, turns, question]
        question.submit(on_ask, ask_inputs, ask_outputs, show_progress="hidden")
        ask_btn.click(on_ask, ask_inputs, ask_outputs, show_progress="hidden")

        def on_new_chat() -> tuple[list[Any], str, list[Turn]]:
            return [], sources_html([]), []

        new_chat.click(on_new_chat, None, [chatbot, sources, turns])
        chatbot.clear(on_new_chat, None, [chatbot, sources, turns])

        def on_add(
            paths: Sequence[str] | None, link: str, progress: gr.Progress = _PROGRESS
        ) -> tuple[Any, ...]:
            def report(done: int, total: int, message: str) -> None:
                progress((done, total) if total else None, desc=message)

            html = handlers.add_articles(paths, link, settings, report)
            status_, table_, choices_ = _index_views(settings, listing)
            return html, None, "", status_, table_, choices_

        add_btn.click(on_add, [files, url], [summary, files, url, status, table, source_filter])

        def on_refresh(query: str) -> tuple[Any, ...]:
            return _index_views(settings, listing, query)

        def on_search(query: str) -> Any:
            # A keystroke only filters the cached rows; status and sources stay as they are.
            try:
                return _table(settings, listing.snapshot(), query)
            except Exception:  # the Refresh button shows why
                return gr.skip()

        views = [status, table, source_filter]
        search.change(on_search, [search], [table], show_progress="hidden")
        refresh.click(on_refresh, [search], views)
        demo.load(on_refresh, [search], views)
    return demo


def parse_auth(auth: str | SecretStr | None) -> tuple[str, str] | None:
    """``user:password`` -> (user, password); the password may itself contain ':'."""
    if isinstance(auth, SecretStr):
        auth = auth.get_secret_value()
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise ConfigError("--auth must look like user:password (both non-empty)")
    return user, password


def check_exposure(host: str, credentials: tuple[str, str] | None, no_auth: bool) -> None:
    """Refuse to serve beyond this machine without a login, unless told so explicitly.

    Anyone who reaches the port could read every indexed article, add their own and make the
    server fetch URLs; a warning in a log nobody reads is not enough.
    """
    if credentials is None and not no_auth and not _is_loopback(host):
        raise ConfigError(
            f"refusing to serve the UI on {host} without a login: anyone who can reach it "
            "could read and add articles. Pass --auth user:password (or set "
            "ASSISTANT_UI_AUTH=user:password), bind to 127.0.0.1, or pass --no-auth if "
            "everyone on that network may use it"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warm_up(settings: Settings) -> None:
    """Load the embedding model and open the index before the first question (~5 s cold).

    Runs in the background while the server starts; an empty or broken index is reported
    to the user when they ask, not here.
    """
    from assistant.api import answer

    try:
        answer("warm up", settings=settings)
    except Exception as exc:
        log.info("warm-up skipped: %s", exc)


def launch(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    auth: str | SecretStr | None = None,
    *,
    no_auth: bool = False,
    block: bool = True,
) -> gr.Blocks:
    """Serve the UI; binds ``settings.ui_host`` (127.0.0.1) unless ``host`` says otherwise."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    host = host or settings.ui_host
    credentials = parse_auth(auth if auth is not None else settings.ui_auth)
    check_exposure(host, credentials, no_auth)
    if credentials is None and not _is_loopback(host):
        log.warning("serving on %s without a login (--no-auth)", host)
    demo = build_app(settings)
    threading.Thread(target=_warm_up, args=(settings,), name="warm-up", daemon=True).start()
    demo.queue(default_concurrency_limit=settings.ui_workers, max_size=settings.ui_queue_size)
    demo.launch(
        server_name=host,
        server_port=port or settings.ui_port,
        auth=credentials,
        max_file_size=int(settings.max_upload_mb * 1024 * 1024),
        share=False,
        inbrowser=False,
        ssr_mode=False,
        mcp_server=False,
        css=APP_CSS,
        prevent_thread_lock=not block,
        show_error=False,
        footer_links=[],
    )
    return demo


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m ui.app [--host H] [--port P] [--auth user:password]``: settings from env."""
    parser = argparse.ArgumentParser(description="Article Assistant chat UI")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--auth", default=None)
    parser.add_argument("--no-auth", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        launch(Settings(), host=args.host, port=args.port, auth=args.auth, no_auth=args.no_auth)
    except ConfigError as exc:
        parser.exit(2, f"error: {exc}\n")


if __name__ == "__main__":
    main()
