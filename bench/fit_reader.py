"""Fit the reader's scorer (logistic regression + decline threshold) on labelled questions.

Two steps, so the slow one runs once:

  collect  retrieve for every question of a question file over an existing index
           (ASSISTANT_HOME), build the reader's candidates and features, label each candidate
           (does its quoted text contain the gold answer?), and save them as a pickle.
  fit      cross-validate on the pickles of the fitting split (question-level folds the fit
           never saw): the candidate ranker, then the question-level decline model on the
           ranker's out-of-fold scores; pick the decline threshold from the decline model's
           out-of-fold probabilities, fit both on all of them, and write the weights JSON;
           ``--test`` pickles are scored once at the end.

Question files: JSONL with ``question`` and ``answer`` (null = unanswerable), as the BBC dev
set; or RealTime QA's ``questions.jsonl`` (``--format rtqa``: the gold subset, gold =
``answer_text``). ``--drop-gold`` retrieves without the gold article: a question whose answer
is then nowhere in the passages becomes an unanswerable example. Every question gets a split ("fit" or "test") from a hash of its text, so
the held-out part is fixed and never used in fitting.

  python bench/fit_reader.py collect QUESTIONS.jsonl OUT.pkl [--format rtqa] [--drop-gold]
  python bench/fit_reader.py fit A.pkl B.pkl ... --out assistant/reader/weights.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# The gold answer in a text as whole words: `assistant eval`'s rule, under the bench's name.
from assistant.evaluation.metrics import answer_correct as contains


def split_of(question: str, test_share: float) -> str:
    h = int(hashlib.sha1(question.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_share else "fit"


def _first(value: Any) -> str:
    """RealTime QA keeps the answer as a list of strings (one, in the gold subset)."""
    text = value[0] if isinstance(value, list) and value else value
    return str(text).strip().strip("“”\"'")


def load_questions(path: Path, fmt: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = []
    for r in rows:
        if fmt == "rtqa":
            if not r.get("gold_doc_ids"):
                continue
            out.append(
                {
                    "question": r["question"],
                    "answer": _first(r["answer_text"]),
                    "gold_urls": r.get("gold_urls", []),
                    "article": None,
                    "date": r.get("question_date"),
                }
            )
        else:
            out.append(
                {
                    "question": r["question"],
                    "answer": r.get("answer"),
                    "article": r.get("article"),
                }
            )
    return out


def collect(args: argparse.Namespace) -> None:
    from assistant.api import open_index
    from assistant.reader.features import context_text
    from assistant.reader.reader import Reader
    from assistant.retrieval import HybridRetriever

    index = open_index()
    fetch = args.k + (6 if args.drop_gold else 0)
    retriever = HybridRetriever(index=index, k=fetch)
    reader = Reader(index.embedder, parse_limit=args.parse_limit)
    records = []
    questions = load_questions(Path(args.questions), args.format)
    started = time.perf_counter()
    for n, q in enumerate(questions, 1):
        docs = retriever.invoke(q["question"])
        if args.drop_gold:
            docs = [d for d in docs if not _is_gold(d, q)]
        docs = docs[: args.k]
        if args.drop_gold and not _in_docs(docs, q["answer"]):
            q = {**q, "answer": None}  # the detail is nowhere in what the reader sees
        analysis, cands = reader.candidates(q["question"], docs)
        gold_doc = [i for i, d in enumerate(docs) if _is_gold(d, q)]
        records.append(
            {
                "question": q["question"],
                "answer": q["answer"],
                "split": split_of(q["question"], args.test_share),
                "set": args.name or Path(args.questions).stem,
                "x": np.vstack([c.x for c in cands]) if cands else np.zeros((0, 0)),
                "y": np.array([contains(context_text(c.unit), q["answer"]) for c in cands]),
                "quotes": [context_text(c.unit) for c in cands],
                "spans": [c.unit.text[c.span[0] : c.span[1]] if c.span else None for c in cands],
                "in_docs": _in_docs(docs, q["answer"]),
                "gold_rank": gold_doc[0] if gold_doc else None,
                "type": analysis.answer_type,
            }
        )
        if n % 20 == 0:
            print(f"{n}/{len(questions)} {time.perf_counter() - started:.0f}s", file=sys.stderr)
    Path(args.out).write_bytes(pickle.dumps(records))
    print(f"wrote {len(records)} questions to {args.out}")


def _is_gold(doc: Any, q: dict[str, Any]) -> bool:
    m = doc.metadata
    return bool(
        (q["article"] and str(m.get("origin", "")).endswith(q["article"]))
        or (m.get("url") and m.get("url") in q.get("gold_urls", []))
    )


def _in_docs(docs: list[Any], answer: str | None) -> bool:
    return any(
        contains(
            d.metadata.get("context_before", "")
            + d.page_content
            + d.metadata.get("context_after", ""),
            answer,
        )
        for d in docs
    )


def _load(paths: list[str]) -> list[dict[str, Any]]:
    """Collected records, their candidate labels recomputed from the stored quotes (so a fix
    of the matching rule needs no new collection)."""
    out: list[dict[str, Any]] = []
    for p in paths:
        out += pickle.loads(Path(p).read_bytes())
    for r in out:
        r["y"] = np.array([contains(q, r["answer"]) for q in r["quotes"]], dtype=bool)
    return out


def _standardised_lr(x: np.ndarray, y: np.ndarray, c: float) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    lr = LogisticRegression(C=c, max_iter=2000)
    lr.fit((x - mean) / scale, y)
    return {"mean": mean, "scale": scale, "coef": lr.coef_[0], "intercept": float(lr.intercept_[0])}


def _logits(x: np.ndarray, p: dict[str, Any]) -> np.ndarray:
    return np.asarray(((x - p["mean"]) / p["scale"]) @ p["coef"] + p["intercept"])


def _fit_ranker(records: list[dict[str, Any]], c: float) -> dict[str, Any]:
    rows = [r for r in records if len(r["x"])]
    x = np.vstack([r["x"] for r in rows])
    y = np.concatenate([r["y"] for r in rows]).astype(int)
    return _standardised_lr(x, y, c)


def _question_rows(records: list[dict[str, Any]], ranker: dict[str, Any]) -> list[Any]:
    """(question features, best candidate index) of each record, None without candidates."""
    from assistant.reader.scorer import question_features

    out: list[Any] = []
    for r in records:
        if not len(r["x"]):
            out.append(None)
            continue
        z = _logits(r["x"], ranker)
        out.append((question_features(r["x"], z), int(np.argmax(z))))
    return out


def _answerable(r: dict[str, Any]) -> int:
    """The decline model's label: the question has an answer in the indexed articles."""
    return int(bool(r["answer"]))


def _metrics(records: list[dict[str, Any]], preds: list[tuple[float, int]], tau: float) -> dict:
    ans = [(r, p) for r, p in zip(records, preds, strict=True) if r["answer"]]
    una = [(r, p) for r, p in zip(records, preds, strict=True) if not r["answer"]]
    correct = [p[0] >= tau and p[1] >= 0 and bool(r["y"][p[1]]) for r, p in ans]
    top1 = [p[1] >= 0 and bool(r["y"][p[1]]) for r, p in ans]

    def share(values: list[bool]) -> float | None:
        return round(float(np.mean(values)), 3) if values else None

    return {
        "answerable": len(ans),
        "gold_in_answer": share(correct),
        "gold_in_top_candidate": share(top1),
        "gold_in_any_candidate": share([bool(r["y"].any()) for r, _ in ans]),
        "answerable_declined": share([p[0] < tau for _, p in ans]),
        "unanswerable": len(una),
        "unanswerable_declined": share([p[0] < tau for _, p in una]),
    }


def _threshold(records, preds, max_false_decline: float) -> float:  # type: ignore[no-untyped-def]
    """The highest threshold that declines at most ``max_false_decline`` of the answerable
    questions whose gold answer is among the candidates (others cannot be answered right)."""
    scores = sorted(
        p[0] for r, p in zip(records, preds, strict=True) if r["answer"] and r["y"].any()
    )
    if not scores:
        return 0.5
    k = int(np.floor(max_false_decline * len(scores)))
    return float(scores[k]) - 1e-6


def _folds(n: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(n) % k


def _fit_decline(rows: list[Any], labels: list[int], c: float) -> dict[str, Any]:
    keep = [i for i, q in enumerate(rows) if q is not None]
    x = np.vstack([rows[i][0] for i in keep])
    return _standardised_lr(x, np.array([labels[i] for i in keep]), c)


def _decline_preds(rows: list[Any], decline: dict[str, Any]) -> list[tuple[float, int]]:
    out = []
    for q in rows:
        if q is None:
            out.append((0.0, -1))
        else:
            out.append((float(1 / (1 + np.exp(-_logits(q[0][None], decline)[0]))), q[1]))
    return out


def _limited(records: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The records as a reader parsing only the first ``limit`` candidates would see them
    (collect keeps them in the reader's prefilter order)."""
    return [{**r, "x": r["x"][:limit], "y": r["y"][:limit]} for r in records]


def fit(args: argparse.Namespace) -> None:
    """Ranker and decline model, each judged on questions its fit never saw.

    The ranker's out-of-fold logits give every fitting question the question features it
    would have at run time (the ranker never saw it); the decline model is fitted on those,
    and its own out-of-fold probabilities set the threshold and the CV report."""
    records = [r for r in _load(args.data) if r["split"] == "fit" or args.all_fit]
    records = _limited(records, args.parse_limit)
    folds = _folds(len(records), args.folds, args.seed)
    rows: list[Any] = [None] * len(records)
    for f in range(args.folds):
        ranker = _fit_ranker([r for r, k in zip(records, folds, strict=True) if k != f], args.C)
        held = [i for i, k in enumerate(folds) if k == f]
        for i, q in zip(held, _question_rows([records[i] for i in held], ranker), strict=True):
            rows[i] = q
    labels = [_answerable(r) for r in records]
    dfolds = _folds(len(records), args.folds, args.seed + 1)
    preds: list[tuple[float, int]] = [(0.0, -1)] * len(records)
    for f in range(args.folds):
        train = [i for i, k in enumerate(dfolds) if k != f]
        decline = _fit_decline([rows[i] for i in train], [labels[i] for i in train], args.C)
        held = [i for i, k in enumerate(dfolds) if k == f]
        for i, p in zip(held, _decline_preds([rows[i] for i in held], decline), strict=True):
            preds[i] = p
    tau = _threshold(records, preds, args.max_false_decline)
    report: dict[str, Any] = {"threshold_from_cv": tau, "cv": {}}
    for name in [*sorted({r["set"] for r in records}), "all"]:
        idx = [i for i, r in enumerate(records) if name in ("all", r["set"])]
        report["cv"][name] = _metrics([records[i] for i in idx], [preds[i] for i in idx], tau)
    ranker = _fit_ranker(records, args.C)
    decline = _fit_decline(rows, labels, args.C)
    from assistant.reader.features import FEATURES
    from assistant.reader.scorer import DECLINE_FEATURES

    def part(p: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
        return {
            "features": list(names),
            "mean": p["mean"].tolist(),
            "scale": p["scale"].tolist(),
            "coef": p["coef"].tolist(),
            "intercept": p["intercept"],
        }

    model = {
        "ranker": part(ranker, FEATURES),
        "decline": part(decline, DECLINE_FEATURES),
        "threshold": tau,
        "parse_limit": args.parse_limit,
    }
    if args.test:
        test = _limited([r for r in _load(args.test) if r["split"] == "test"], args.parse_limit)
        tp = _decline_preds(_question_rows(test, ranker), decline)
        report["test"] = {
            name: _metrics(
                [r for r in test if name in ("all", r["set"])],
                [p for r, p in zip(test, tp, strict=True) if name in ("all", r["set"])],
                tau,
            )
            for name in [*sorted({r["set"] for r in test}), "all"]
        }
    out = {
        "model": model,
        "fitted_on": {
            "sets": sorted({r["set"] for r in records}),
            "questions": len(records),
            "candidates": int(sum(len(r["x"]) for r in records)),
            "C": args.C,
            "folds": args.folds,
            "max_false_decline": args.max_false_decline,
        },
        "report": report,
    }
    print(json.dumps(report, indent=1))
    print("ranker", dict(zip(FEATURES, np.round(ranker["coef"], 2).tolist(), strict=True)))
    print(
        "decline", dict(zip(DECLINE_FEATURES, np.round(decline["coef"], 2).tolist(), strict=True))
    )
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


def collect_arguments(c: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options every ``collect`` step shares (this script's and calibrate_extractive's)."""
    c.add_argument("questions")
    c.add_argument("out")
    c.add_argument("--format", choices=["jsonl", "rtqa"], default="jsonl")
    c.add_argument("--k", type=int, default=5)
    c.add_argument("--drop-gold", action="store_true", help="retrieve without the gold article")
    c.add_argument("--test-share", type=float, default=0.34)
    return c


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = collect_arguments(sub.add_parser("collect"))
    c.add_argument("--name")
    c.add_argument(
        "--parse-limit",
        type=int,
        default=12,
        help="candidates kept per question, in the reader's prefilter order (fit may use fewer)",
    )
    f = sub.add_parser("fit")
    f.add_argument("data", nargs="+")
    f.add_argument("--test", nargs="*", help="pickles whose 'test' split is scored once")
    f.add_argument("--out")
    f.add_argument("--folds", type=int, default=5)
    f.add_argument("--C", type=float, default=1.0)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--parse-limit", type=int, default=8, help="candidates the reader parses")
    f.add_argument("--max-false-decline", type=float, default=0.04)
    f.add_argument("--all-fit", action="store_true", help="use both splits (e.g. the dev set)")
    args = p.parse_args(argv)
    collect(args) if args.cmd == "collect" else fit(args)


if __name__ == "__main__":
    main()
