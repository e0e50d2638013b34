"""Server-side cost of two UI events a person feels: a keystroke in the article search, and
one streamed fragment of an answer in a long conversation.

Each event runs the way Gradio runs it on the server: the bound Python function, then Gradio's
postprocessing of its outputs, then the diff against the previous value that a stream sends
(the bytes reaching the browser are what it re-renders). The index holds ``--articles``
synthetic articles embedded with the fake embedder (embedding cost is not what is measured);
the chat has ``--turns`` finished turns with five citations each, and a fake answer stream
of ``--fragments`` fragments.

Works on the code before and after the caching changes (it finds the events by the
components' elem_ids), so the same command gives both figures:

    PYTHONPATH=$PWD .venv/bin/python bench/ui_latency.py --articles 2000 --turns 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

WORDS = [
    "harbour",
    "strike",
    "council",
    "budget",
    "river",
    "otters",
    "minister",
    "vote",
    "tariffs",
    "market",
    "storm",
    "ferry",
    "school",
    "hospital",
    "election",
    "court",
    "police",
    "museum",
    "railway",
    "bridge",
    "festival",
    "farmers",
    "energy",
    "prices",
    "rates",
    "union",
    "talks",
    "wages",
    "housing",
    "flood",
    "league",
    "stadium",
    "coach",
    "season",
    "trial",
    "judge",
    "report",
    "survey",
]


def write_corpus(folder: Path, n: int, rng: random.Random) -> None:
    for i in range(n):
        sub = folder / f"{i // 500:03d}"
        sub.mkdir(parents=True, exist_ok=True)
        title = " ".join(rng.choice(WORDS) for _ in range(5)).capitalize() + f" {i}"
        body = " ".join(
            " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(8)
        )
        (sub / f"a{i:05d}.txt").write_text(f"{title}\n\n{body}\n")


def find_fn(demo: Any, elem_id: str, event: str) -> Any:
    """The BlockFunction bound to ``event`` of the component with ``elem_id``."""
    ids = {b._id for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id}
    for block_fn in demo.fns.values():
        if any(t[0] in ids and t[1] == event for t in block_fn.targets):
            return block_fn
    raise SystemExit(f"no {event} event on #{elem_id}")


def server_cost(
    demo: Any,
    block_fn: Any,
    outputs: Iterator[Any],
    loop: asyncio.AbstractEventLoop,
    stream: bool,
) -> list[tuple[float, int]]:
    """(ms, bytes sent) per output of an event: function, postprocess, and for a stream the
    diff against its previous output (Gradio sends a plain event's whole value)."""
    from gradio import utils
    from gradio.state_holder import SessionState

    state = SessionState(demo)
    previous: list[Any] | None = None
    figures = []
    while True:
        start = time.perf_counter()
        try:
            prediction = next(outputs)
        except StopIteration:
            break
        data = loop.run_until_complete(demo.postprocess_data(block_fn, prediction, state))
        if stream and previous is not None:
            sent: list[Any] = [utils.diff(p, d) for p, d in zip(previous, data, strict=True)]
        else:
            sent = data
        previous = data
        payload = len(json.dumps(sent, default=str))
        figures.append(((time.perf_counter() - start) * 1000, payload))
    return figures


def summary(name: str, figures: list[tuple[float, int]]) -> dict[str, float]:
    ms = [f[0] for f in figures]
    sizes = [f[1] for f in figures]
    out = {
        "events": len(figures),
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(sorted(ms)[int(0.9 * (len(ms) - 1))], 2),
        "median_bytes": int(statistics.median(sizes)),
    }
    print(
        f"{name:34} {out['events']:4d} events  median {out['median_ms']:8.2f} ms  "
        f"p90 {out['p90_ms']:8.2f} ms  median {out['median_bytes']:8d} bytes sent"
    )
    return out


def fake_conversation(turns: int) -> list[Any]:
    from assistant.types import Answer, Citation
    from ui.render import Turn

    rng = random.Random(7)
    history = []
    for t in range(turns):
        cites = []
        for n in range(1, 6):
            passage = " ".join(rng.choice(WORDS) for _ in range(110))
            quote = passage[100:220]
            cites.append(
                Citation(
                    n=n,
                    title=f"Article {t}-{n}",
                    source="BBC",
                    published="2025-01-02",
                    url=f"https://news.example/{t}/{n}",
                    quote=quote,
                    passage=passage,
                    start=100,
                    end=220,
                    score=0.5,
                    passage_start=0,
                    chunk_id=f"c{t}{n}",
                    article_id=f"a{t}{n}",
                )
            )
        text = " ".join(
            f"{' '.join(rng.choice(WORDS) for _ in range(14))} [{n}]." for n in range(1, 6)
        )
        history.append(Turn(f"Question {t}?", answer=Answer(f"Question {t}?", text, True, cites)))
    return history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--fragments", type=int, default=120)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)

    import assistant.api as api
    from assistant.settings import Settings
    from assistant.types import Answer
    from ui.app import build_app

    loop = asyncio.new_event_loop()
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as tmp:
        settings = Settings(home=Path(tmp) / "home", embedding_model="fake")
        if "ui_stream_refresh_s" in Settings.model_fields:  # the cost of every update, unpaced
            settings = settings.model_copy(update={"ui_stream_refresh_s": 0.0})
        corpus = Path(tmp) / "corpus"
        write_corpus(corpus, args.articles, random.Random(1))
        start = time.perf_counter()
        report = api.sync_articles([str(corpus)], settings=settings, progress=lambda *a: None)
        print(
            f"indexed {report.added} articles in {time.perf_counter() - start:.1f} s (fake embedder)"
        )

        demo = build_app(settings)
        results: dict[str, Any] = {}

        search = find_fn(demo, "aa-search", "change")
        query = "harbour strike council"
        keystrokes = [query[: i + 1] for i in range(len(query))] * 3
        calls = (search.fn(q) for q in keystrokes)
        search.fn(query)  # first load (status, model of the table) is not a keystroke
        results["search_keystroke"] = summary(
            f"search keystroke ({args.articles} articles)",
            server_cost(demo, search, calls, loop, False),
        )

        history = fake_conversation(args.turns)
        final = history[-1].answer

        def stream(question: str, history: Any = None, **kwargs: Any) -> Iterator[Any]:
            for i in range(args.fragments):
                yield f"word{i} "
            yield Answer(question, final.text, True, final.citations)

        api.stream_answer = stream  # type: ignore[assignment]
        ask = find_fn(demo, "aa-question", "submit")
        generator: Callable[..., Iterator[Any]] = ask.fn
        outputs = generator("One more question?", history, 5, "extractive", [], "", "")
        figures = server_cost(demo, ask, outputs, loop, True)
        results["stream_fragment"] = summary(
            f"streamed fragment ({args.turns}-turn chat)", figures[1:-1]
        )
        results["answer_total_ms"] = round(sum(f[0] for f in figures), 1)
        print(f"{'whole answer (all fragments)':34} {results['answer_total_ms']:.1f} ms")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
