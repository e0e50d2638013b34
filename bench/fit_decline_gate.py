"""Try a fitted decline gate for the extractive answerer: fit it on fit questions, report it on
others. (Tried 2026-12-02 and not adopted: bench/README.md, "Sixth pass". Kept so the result
can be re-run on more labelled data.)

The answerer declines when its best sentence scores under one threshold. A passage on the
right story that lacks the asked-for detail scores as high as one that has it, so only a third
of such questions are declined. The gate reads question-level features of the ranked sentences
(``FEATURES``: coverage of the question by the best sentence, the weight of question words it
and every passage lack, its meaning score, the margin to another article) and a logistic
regression turns them into an "answers it" probability.

Input: files written by ``bench/calibrate_extractive.py collect`` (each question with its
retrieved passages). Every question is re-answered from its stored passages with no threshold.
Unanswerable examples come from three places:

- questions written unanswerable (the detail is not in the story),
- ``--drop-gold`` files (the story is not among the passages),
- **the answer's sentences removed** (made here from every answerable question whose answer is
  in its passages: each sentence holding the gold answer is blanked, offsets kept, and the
  question asked again over what is left): the right story without the asked-for detail,
  with no hand labelling.

The regression (standardised features, ``--C``) is fitted on answered-right (1) against
unanswerable (0) questions; answerable questions answered wrongly are left out of the fit but
counted by the threshold rule. Out-of-fold probabilities (``--folds`` folds, a question and its
removed-sentence variant in the same fold) choose the threshold: the highest that declines at
most ``--max-declined`` of the answerable fit questions, the rule the score threshold uses
(printed beside it at its own rule). The report files are answered once with the final model.

  ASSISTANT_HOME=H python bench/fit_decline_gate.py FIT.jsonl ... --report HELD.jsonl ...
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_extractive import _read, row_docs
from fit_reader import _in_docs, _logits, _standardised_lr, contains

from assistant.wordweights import question_weights
from index.lexical import tokenize

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from langchain_core.documents import Document

    from assistant.extractive import Sentence


#: The features, in the order of the fitted coefficients.
FEATURES = (
    "score",  # the best sentence's score (the old rule's only input)
    "lexical",  # its weighted question-term coverage
    "dense",  # its cosine to the question
    "missing_top",  # weight share of question words neither it, its context nor its title has
    "rarest_missing",  # the heaviest such word's weight / 7 (the weight of an unseen name)
    "nowhere",  # weight share of question words no retrieved passage or title has
    "gap",  # best score minus the best score of another article's sentence
    "typed",  # 1 when the question asks for a kind of answer (money, date, name, ...)
)


def gate_features(
    question: str,
    docs: Sequence[Document],
    ranked: Sequence[Sentence],
    typed_question: bool,
    weigh: Callable[[str], dict[str, float]] = question_weights,
) -> dict[str, float]:
    """The gate's inputs for one question whose sentences ``ranked`` are scored, best first."""
    top = ranked[0]
    weights = weigh(question)
    total = sum(weights.values()) or 1.0
    title = set(tokenize(docs[top.doc].metadata.get("title") or ""))
    top_toks = set(tokenize(f"{top.context} {top.text}")) | title
    everywhere: set[str] = set()
    for doc in docs:
        everywhere |= set(tokenize(doc.page_content)) | set(
            tokenize(doc.metadata.get("title") or "")
        )
    missing = [w for t, w in weights.items() if t not in top_toks]
    other = next((s.score for s in ranked[1:] if s.doc != top.doc), top.score - 1.0)
    return {
        "score": top.score,
        "lexical": top.lexical,
        "dense": top.dense,
        "missing_top": sum(missing) / total,
        "rarest_missing": max(missing, default=0.0) / 7.0,
        "nowhere": sum(w for t, w in weights.items() if t not in everywhere) / total,
        "gap": top.score - other,
        "typed": 1.0 if typed_question else 0.0,
    }


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
    docs = row_docs(row)
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
        variants = [(row_docs(r), r["answer"], "")]
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
    """Answered right (1) against unanswerable (0); wrong answers are left out."""
    train = [e for e in ex if e["right"] or not e["answerable"]]
    y = np.array([1 if e["right"] else 0 for e in train])
    return _standardised_lr(np.array([e["x"] for e in train]), y, c)


def _prob(model: dict[str, Any], ex: list[dict[str, Any]]) -> np.ndarray:
    return 1 / (1 + np.exp(-_logits(np.array([e["x"] for e in ex]), model)))


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


def choose_threshold(
    ex: list[dict[str, Any]], p: np.ndarray, max_declined: float, low: float = 0.01
) -> float:
    """The highest threshold (steps of 0.01 from ``low``) declining at most ``max_declined`` of
    the answerable questions."""
    best = low
    for t in np.round(np.arange(low, 1.0, 0.01), 2):
        if figures(ex, p >= t)["answerable_declined"] <= max_declined:
            best = float(t)
    return best


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("fit", nargs="+", help="collected fit files (calibrate_extractive collect)")
    p.add_argument("--report", action="append", default=[], help="collected report files")
    p.add_argument("--C", type=float, default=1.0)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--max-declined", type=float, default=0.05)
    args = p.parse_args(argv)

    from assistant.api import open_index
    from assistant.extractive import DECLINE_THRESHOLD, ExtractiveAnswerer

    embedder = open_index().embedder
    embedder.passage_cache_size = embedder.query_cache_size = 1_000_000
    answerer = ExtractiveAnswerer(embedder, threshold=float("-inf"))
    ex = []
    for path in args.fit:
        for e in examples(_read([path]), answerer, synth=True):
            ex.append({**e, "file": Path(path).name})
    score = np.array([e["x"][FEATURES.index("score")] for e in ex])
    p_oof = _oof(ex, args.C, args.folds)
    tau = choose_threshold(ex, p_oof, args.max_declined)
    model = _fit(ex, args.C)
    print(json.dumps({"fit_examples": len(ex), "threshold": tau}))
    s_tau = choose_threshold(ex, score, args.max_declined, low=0.2)
    print(json.dumps({"fit": "score threshold", **figures(ex, score >= DECLINE_THRESHOLD)}))
    print(json.dumps({"fit": f"score, same rule: {s_tau}", **figures(ex, score >= s_tau)}))
    print(json.dumps({"fit": "gate, out of fold", **figures(ex, p_oof >= tau)}))
    for name in dict.fromkeys(e["file"] for e in ex):
        m = np.array([e["file"] == name for e in ex])
        sub = [e for e in ex if e["file"] == name]
        print(
            json.dumps(
                {
                    "file": name,
                    "score": figures(sub, score[m] >= DECLINE_THRESHOLD),
                    "gate": figures(sub, p_oof[m] >= tau),
                }
            )
        )
    print(json.dumps({"coef": dict(zip(FEATURES, np.round(model["coef"], 3), strict=True))}))
    for path in args.report:
        rex = examples(_read([path]), answerer, synth=True)
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


if __name__ == "__main__":
    main()
