"""The ``assistant`` command: index articles, ask questions, open the chat UI, measure.

Expected failures become one line on stderr that says what to do, never a traceback.
Exit codes: 0 ok, 1 some input failed, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import re
import sys
from collections.abc import Sequence
from datetime import date
from importlib.resources import files
from typing import Any

from pydantic import ValidationError

from assistant.errors import AssistantError
from assistant.settings import Settings

EPILOG = """Configuration: environment variables prefixed ASSISTANT_ (ASSISTANT_HOME,
ASSISTANT_EMBEDDING_MODEL, ASSISTANT_CHROMA_HOST/PORT, ASSISTANT_LLM, ...; see
assistant/settings.py or the README). Flags override them."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: object, *, lines: bool = False) -> str:
    """Text from files and articles made safe for a terminal: control characters (escape
    sequences, a newline in a file name) are shown escaped, so they can neither forge an
    output line nor drive the terminal. With ``lines``, newlines and tabs are kept."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if lines and char in "\n\t":
            return char
        return char.encode("unicode_escape").decode("ascii")

    return _CONTROL.sub(escape, str(text))


def sample_corpus() -> str:
    """The bundled sample articles (installed with the package)."""
    return str(files("assistant") / "sample_articles")


# The measuring commands live beside the product (assistant/evaluation/); their modules are
# imported only when one of them runs, so `index`, `ask` and `ui` never load them.
MEASURE = {
    "eval": ("assistant.evaluation.quality", "measure answer quality on a question set"),
    "bench": ("assistant.evaluation.benchmark", "measure indexing and query speed"),
}


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; the options of ``eval``/``bench`` are added only when ``command``
    is that one (``assistant --help`` lists both from their one-line summaries)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", help="index directory (ASSISTANT_HOME)")
    common.add_argument("--embedding-model", help="sentence-transformers model name or path")
    common.add_argument("--chroma-host", help="use a Chroma server at this host")
    common.add_argument("--chroma-port", type=int, help="Chroma server port (default 8000)")

    parser = argparse.ArgumentParser(
        prog="assistant",
        epilog=EPILOG,
        description="Answer questions over a collection of news articles, citing the passages.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "index",
        parents=[common],
        epilog=EPILOG,
        help="add, update and remove articles so the index mirrors its sources",
        description="Sync the index with folders, files and URLs: new articles "
        "are added, changed ones re-embedded, deleted ones removed; unchanged "
        "ones cost nothing. With no SOURCE, re-syncs every source synced before.",
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="PATH|URL",
        help="folders, article files (.txt .md .html .json .jsonl) or http(s) URLs",
    )
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="re-embed everything into a fresh index (the old one serves until done)",
    )
    p.add_argument(
        "--forget",
        action="append",
        default=[],
        metavar="PATH|URL",
        help="remove the articles of this source from the index (repeatable); a source that "
        "is missing is never removed otherwise",
    )
    p.add_argument("--sample", action="store_true", help="index the bundled sample articles")
    p.add_argument(
        "--if-empty",
        action="store_true",
        help="index the bundled sample only if nothing is indexed yet",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another running sync instead of refusing",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON (last line)")

    p = sub.add_parser("status", parents=[common], help="what is indexed, with which model, where")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser(
        "ask",
        parents=[common],
        epilog=EPILOG,
        help="answer a question with cited passages",
        description="Answer QUESTION from the indexed articles. Every sentence "
        "of the answer carries [n] markers that point at the sources listed.",
    )
    p.add_argument("question", help="the question, in quotes")
    p.add_argument("--json", action="store_true", help="print Answer.to_dict() as JSON")
    p.add_argument("--k", type=int, help="passages to retrieve (default 5)")
    p.add_argument("--llm", help="answer with an LLM: ollama:MODEL, openai:MODEL, llamacpp:PATH")
    p.add_argument("--source", action="append", dest="sources", help="only this source")
    p.add_argument(
        "--as-of",
        type=_iso_day,
        help="answer as on this day (YYYY-MM-DD, default today): later articles are not used",
    )

    p = sub.add_parser("ui", parents=[common], help="open the chat UI in the browser")
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--auth", help="require a login: user:password (ASSISTANT_UI_AUTH)")
    p.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without a login on a non-loopback --host (refused otherwise)",
    )

    for name, (module_name, summary) in MEASURE.items():
        p = sub.add_parser(
            name,
            parents=[common],
            help=summary,
            description=summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name == command:
            module = importlib.import_module(module_name)
            p.description = module.__doc__
            module.add_arguments(p)
    return parser


def _iso_day(text: str) -> date:
    """An ``--as-of`` value: a calendar day, or a clear error naming the expected form."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; use YYYY-MM-DD") from None


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for flag, field in (
        ("home", "home"),
        ("embedding_model", "embedding_model"),
        ("chroma_host", "chroma_host"),
        ("chroma_port", "chroma_port"),
        ("llm", "llm"),
        ("auth", "ui_auth"),
        ("host", "ui_host"),
        ("port", "ui_port"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = value
    return Settings(**overrides)


def _cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.api import forget_sources, index_status, sync_articles

    sources = list(args.sources)
    if args.sample or (args.if_empty and not sources):
        if args.if_empty and index_status(settings).articles > 0:
            print(f"Index in {settings.home} already holds articles; nothing to do.")
            return 0
        sources.append(sample_corpus())
    if args.forget:
        report = forget_sources(args.forget, settings=settings, wait=args.wait)
        if sources or args.rebuild:  # `--forget` alone must not re-sync every other source
            synced = sync_articles(
                sources or None, settings=settings, rebuild=args.rebuild, wait=args.wait
            )
            synced.removed += report.removed
            synced.failed[:0] = report.failed
            report = synced
    else:
        report = sync_articles(
            sources or None, settings=settings, rebuild=args.rebuild, wait=args.wait
        )
    if report.rebuilt_because:
        print(
            f"warning: {_printable(report.rebuilt_because)}; every article was re-embedded "
            "into a fresh index",
            file=sys.stderr,
        )
    for item in report.failed:
        print(f"error: {_printable(item.path)}: {_printable(item.error)}", file=sys.stderr)
    for item in report.duplicates:
        print(
            f"duplicate: {_printable(item.path)}: {_printable(item.error)}",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(
            f"{report.added} added, {report.updated} updated, {report.removed} removed, "
            f"{report.unchanged} unchanged, {len(report.failed)} failed; "
            f"{report.chunks_embedded} chunks embedded" + (" (rebuilt)" if report.rebuilt else "")
        )
    return 1 if report.failed else 0


def _cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.api import index_status

    status = index_status(settings)
    if args.json:
        print(json.dumps(status.to_dict()))
    else:
        for key, value in status.to_dict().items():
            print(f"{key:16} {value}")
    return 0


def _cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from assistant.api import answer

    result = answer(
        args.question, settings=settings, k=args.k, sources=args.sources, as_of=args.as_of
    )
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    print(_printable(result.text, lines=True))
    if result.citations:
        print("\nSources:" if result.answered else "\nClosest passages:")
    for c in result.citations:
        meta = ", ".join(x for x in (c.source, c.published or "date unknown") if x)
        print(_printable(f"[{c.n}] {c.title}" + (f" ({meta})" if meta else "")))
        print(f'    "{_printable(c.quote, lines=True)}"')
    return 0


def _cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    from ui.app import launch

    launch(
        settings,
        host=settings.ui_host,
        port=settings.ui_port,
        auth=settings.ui_auth,
        no_auth=args.no_auth,
    )
    return 0


def _cmd_measure(args: argparse.Namespace, settings: Settings) -> int:
    run: Any = importlib.import_module(MEASURE[args.command][0]).run
    return int(run(args, settings))


COMMANDS = {
    "index": _cmd_index,
    "status": _cmd_status,
    "ask": _cmd_ask,
    "ui": _cmd_ui,
    "eval": _cmd_measure,
    "bench": _cmd_measure,
}


def main(argv: Sequence[str] | None = None) -> int:
    from_command_line = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv[0] if argv else None).parse_args(argv)
    try:
        settings = _settings(args)
        code = COMMANDS[args.command](args, settings)
        if from_command_line and args.command == "ask":
            # The process ends here. Python's shutdown runs the cyclic garbage collector over
            # the whole heap of LangChain, pydantic and Chroma objects (0.3 s of a 2 s cold
            # question); frozen objects are skipped. Objects outside reference cycles are still
            # freed as usual, stdout is still flushed, and a question writes nothing that a
            # skipped finaliser could lose.
            gc.freeze()
        return code
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        print(
            f"error: setting {where}: {first['msg']} (check ASSISTANT_* variables and flags)",
            file=sys.stderr,
        )
        return 2
    except AssistantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; the index keeps every article that was complete", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
