"""A synthetic news corpus of any size, made by recombining the sentences of a real one.

The benchmark needs corpora 10x and 50x the BBC set (and up to 100,000 articles) to show how
index time, memory, disk and query latency grow; no such real corpus ships offline. Each
synthetic article copies the shape of a random real article (its paragraphs and how many
sentences each holds), fills every slot with a random sentence from the whole corpus and takes
a real headline, so text statistics (sentence and article length, vocabulary) stay realistic
while every article is new (the index would skip exact duplicates).

Deterministic: the same source, size and seed give byte-identical files. Output is written
under the given folder (``NNNN/NNNNNN.txt``, 1,000 files a folder), never into the project.

    python -m assistant.evaluation.synth_corpus --source ../shared/eval/bbc --out /tmp/synth --articles 22250
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path

PER_FOLDER = 1000


@dataclass(frozen=True)
class Pool:
    """What articles are recombined from: headlines, sentences, and article shapes."""

    titles: list[str]
    sentences: list[str]
    shapes: list[tuple[int, ...]]  # sentences per paragraph of each real article


def read_pool(source: Path) -> Pool:
    """Every ``.txt`` article under ``source``: first line headline, blank-line paragraphs."""
    from index.sentences import split_sentences

    titles: list[str] = []
    sentences: list[str] = []
    shapes: list[tuple[int, ...]] = []
    for path in sorted(source.rglob("*.txt")):
        if path.name.upper() == "README.TXT":
            continue
        raw = path.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
        title, _, body = raw.strip().partition("\n")
        shape = []
        for paragraph in body.split("\n\n"):
            spans = split_sentences(paragraph.strip())
            sentences.extend(" ".join(paragraph.strip()[a:b].split()) for a, b in spans)
            if spans:
                shape.append(len(spans))
        if title.strip() and shape:
            titles.append(title.strip())
            shapes.append(tuple(shape))
    if not shapes:
        raise SystemExit(f"no .txt articles under {source}")
    return Pool(titles, sentences, shapes)


def article_text(pool: Pool, rng: random.Random) -> str:
    """One synthetic article: a real headline, then paragraphs of recombined sentences."""
    shape = rng.choice(pool.shapes)
    paragraphs = [" ".join(rng.choice(pool.sentences) for _ in range(n)) for n in shape]
    return rng.choice(pool.titles) + "\n\n" + "\n\n".join(paragraphs) + "\n"


def generate(source: Path, out: Path, articles: int, *, seed: int = 0) -> list[Path]:
    """Write ``articles`` synthetic articles under ``out``; return their paths in order."""
    pool = read_pool(source)
    rng = random.Random(seed)
    paths = []
    for i in range(articles):
        path = out / f"{i // PER_FOLDER:04d}" / f"{i:06d}.txt"
        if i % PER_FOLDER == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(article_text(pool, rng), encoding="utf-8")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, required=True, help="folder of real .txt articles")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--articles", type=int, required=True, help="how many to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    paths = generate(args.source, args.out, args.articles, seed=args.seed)
    print(f"wrote {len(paths)} articles under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
