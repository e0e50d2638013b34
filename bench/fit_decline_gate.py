"""Fit the extractive answerer's decline gate (``assistant/decline_gate.py``) on fit questions and
report it on others.

Input: files written by ``bench/calibrate_extractive.py collect`` (each question with its
retrieved passages). Every question is re-answered from its stored passages with no threshold,
and the gate's features are computed. Unanswerable examples come from three places:

- questions written unanswerable (the detail is not in the story),
- ``--drop-gold`` files (the story is not among the passages),
- **the answer's sentences removed** (made here from every answerable question whose answer is
  in its passages: each sentence holding the gold answer is blanked, offsets kept, and the
  question asked again over what is left). This is the held-out sets' hard case, the right
  story without the asked-for detail, and it needs no hand labelling.

A logistic regression (standardised features, ``--C``) is fitted on answered-right (1) against
unanswerable (0) questions; answerable questions answered wrongly are left out of the fit but
counted by the threshold rule. Out-of-fold probabilities (``--folds`` folds, a question and its
removed-sentence variant in the same fold) choose the threshold: the highest that declines at
most ``--max-declined`` of the answerable fit questions, the rule the score threshold used. The
report files are answered once with the final model, beside the score threshold.

  python bench/fit_decline_gate.py FIT.jsonl ... --report HELD.jsonl ... [--out assistant/decline_gate.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_reader import _in_docs, contains

from assistant.decline_gate import FEATURES, gate_features


def _docs(row: dict[str, Any]) -> list[Any]:
    from langchain_core.documents import Document

    return [Document(page_content=d["text"], metadata=dict(d["metadata"])) for d in row["docs"]]


def _blank(text: str, answer: str) -> str:
    """``text`` with every sentence that holds ``answer`` replaced by spaces (offsets kept)."""
    from index.sentences import split_sentences

    out = list(text)
    for a, b in split_sentences(text):
        if contains(text[a:b], answer):
            out[a:b] = " " * (b - a)
    return "".join(out)


def removed_variant(row: dict[str, Any]) -> list[Any] | None:
    """The row's passages without the sentences holding its answer, or None when the answer
    cannot be taken out that way (a headline holds it, or it spans sentences)."""
    answer = row["answer"]
    docs = _docs(row)
    if not answer or not _in_docs(docs, answer):
        return None
    for d in docs:
        if contains(d.metadata.get("title") or "", answer):
            return None
        d.page_content = _blank(d.page_content, answer)
        for side in ("context_before", "context_after"):
            d.metadata[side] = _blank(d.metadata.get(side, ""), answer)
    return None if _in_docs(docs, answer) else docs


def examples(rows: list[dict[str, Any]], answerer: Any, synth: bool) -> list[dict[str, Any]]:
    """Each row (and, with ``synth``, its removed-sentence variant) answered with no threshold:
    features, answered-by-type, right, answerable, group."""
    from assistant.extractive import expected_type

    out = []
    for r in rows:
        variants = [(_docs(r), r["answer"], "")]
        if synth:
            removed = removed_variant(r)
            if removed is not None:
                variants.append((removed, None, "removed"))
        for docs, answer, kind in variants:
            ranked = answerer.score(r["question"], docs)
            if not ranked:
                continue
            text, _citations, answered = answerer.read(r["question"], docs, ranked)
            typed = expected_type(r["question"]) is not None
            f = gate_features(r["question"], docs, ranked, typed)
            out.append(
                {
                    "x": [f[n] for n in FEATURES],
                    "type_ok": answered,
                    "right": bool(answer) and answered and contains(text, answer),
                    "answerable": bool(answer),
                    "group": r["question"],
                    "kind": kind or ("answerable" if answer else "unanswerable"),
                }
            )
    return out


def _fit(ex: list[dict[str, Any]], c: float) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    train = [e for e in ex if e["right"] or not e["answerable"]]
    x = np.array([e["x"] for e in train])
    y = np.array([1 if e["right"] else 0 for e in train])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    lr = LogisticRegression(C=c, max_iter=2000).fit((x - mean) / scale, y)
    return {
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "coef": lr.coef_[0].tolist(),
        "intercept": float(lr.intercept_[0]),
    }


def _prob(model: dict[str, Any], ex: list[dict[str, Any]]) -> np.ndarray:
    x = (np.array([e["x"] for e in ex]) - model["mean"]) / model["scale"]
    return 1 / (1 + np.exp(-(x @ np.array(model["coef"]) + model["intercept"])))


def _oof(ex: list[dict[str, Any]], c: float, folds: int) -> np.ndarray:
    fold = np.array([zlib.crc32(e["group"].encode()) % folds for e in ex])
    p = np.zeros(len(ex))
    for k in range(folds):
        model = _fit([e for e, f in zip(ex, fold, strict=True) if f != k], c)
        idx = np.where(fold == k)[0]
        p[idx] = _prob(model, [ex[i] for i in idx])
    return p


def figures(ex: list[dict[str, Any]], accept: np.ndarray) -> dict[str, Any]:
    """gold in answer / declined shares by kind, with ``accept`` the gate's yes per example."""
    said = np.array([e["type_ok"] for e in ex]) & accept

    def share(mask: list[bool], values: np.ndarray) -> float | None:
        m = np.array(mask, dtype=bool)
        return round(float(values[m].mean()), 3) if m.any() else None

    right = np.array([e["right"] for e in ex]) & said
    out: dict[str, Any] = {
        "answerable": sum(e["answerable"] for e in ex),
        "gold_in_answer": share([e["answerable"] for e in ex], right),
        "answerable_declined": share([e["answerable"] for e in ex], ~said),
    }
    for kind in ("unanswerable", "removed"):
        mask = [e["kind"] == kind for e in ex]
        if any(mask):
            out[f"{kind}_declined"] = share(mask, ~said)
            out[kind] = sum(mask)
    return out


def choose_threshold(ex: list[dict[str, Any]], p: np.ndarray, max_declined: float) -> float:
    """The highest probability threshold declining at most ``max_declined`` of the answerable."""
    best = 0.0
    for t in np.round(np.arange(0.01, 1.0, 0.01), 2):
        if figures(ex, p >= t)["answerable_declined"] <= max_declined:
            best = float(t)
    return best


def _read(path: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("fit", nargs="+", help="collected fit files (calibrate_extractive collect)")
    p.add_argument("--report", action="append", default=[], help="collected report files")
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--max-declined", type=float, default=0.05)
    p.add_argument("--out", help="write the gate here (assistant/decline_gate.json)")
    args = p.parse_args(argv)

    from assistant.api import open_index
    from assistant.extractive import DECLINE_THRESHOLD, ExtractiveAnswerer

    embedder = open_index().embedder
    embedder.passage_cache_size = embedder.query_cache_size = 1_000_000
    answerer = ExtractiveAnswerer(embedder, threshold=float("-inf"), gate=None)
    fit_rows = [r for path in args.fit for r in _read(path)]
    ex = examples(fit_rows, answerer, synth=True)
    score = np.array([e["x"][FEATURES.index("score")] for e in ex])
    p_oof = _oof(ex, args.C, args.folds)
    tau = choose_threshold(ex, p_oof, args.max_declined)
    model = {**_fit(ex, args.C), "threshold": tau}
    print(json.dumps({"fit_examples": len(ex), "threshold": tau}))
    print(json.dumps({"fit": "score threshold", **figures(ex, score >= DECLINE_THRESHOLD)}))
    print(json.dumps({"fit": "gate, out of fold", **figures(ex, p_oof >= tau)}))
    print(json.dumps({"coef": dict(zip(FEATURES, np.round(model["coef"], 3), strict=True))}))
    for path in args.report:
        rex = examples(_read(path), answerer, synth=True)
        rscore = np.array([e["x"][FEATURES.index("score")] for e in rex])
        name = re.sub(r"\.jsonl$", "", Path(path).name)
        print(
            json.dumps(
                {"report": name, "rule": "score", **figures(rex, rscore >= DECLINE_THRESHOLD)}
            )
        )
        print(
            json.dumps({"report": name, "rule": "gate", **figures(rex, _prob(model, rex) >= tau)})
        )
    if args.out:
        data = {
            "features": list(FEATURES),
            **model,
            "fitted_on": [Path(f).name for f in args.fit],
            "C": args.C,
            "rule": f"highest threshold declining <= {args.max_declined} of answerable fit "
            "questions, out of fold",
        }
        Path(args.out).write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
