"""Run an exported sentence-transformers model on ONNX Runtime: no torch when answering.

Exports live under ``home/models``, one directory per model *content* (a hash of its files),
so a changed model is never served by a stale export, and two homes never share a half-written
one. An export is built in a private temp directory and renamed into place in one step: a
reader sees a whole export or none, and when two processes export at once the second rename
fails harmlessly and that process uses the winner's files. A model the exporter cannot handle
is remembered (``*.failed``, with the reason), so later runs fall back to sentence-transformers
at once instead of loading torch to fail again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from index.onnx_export import (
    EXPORT_FORMAT,
    FP32_FILE,
    INT8_FILE,
    MANIFEST_FILE,
    TOKENIZER_FILE,
    UnsupportedModelError,
)

Span = tuple[int, int]
_HASHES_FILE = "hashes.json"
_STALE_EXPORT_S = 3600.0  # a temp export this old belongs to a process that died


def _write_atomic(path: Path, text: str) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    Path(name).replace(path)


def _model_files(model_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in model_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
    )


def content_hash(model_dir: Path, cache_dir: Path) -> str:
    """SHA-256 over the model's files; remembered per (path, size, mtime) so a start only stats."""
    files = _model_files(model_dir)
    if not files:
        raise UnsupportedModelError(f"{model_dir} holds no model files")
    stamp = hashlib.sha256()
    for p in files:
        st = p.stat()
        stamp.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    key = stamp.hexdigest()
    index_path = cache_dir / _HASHES_FILE
    try:
        known = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict):
        known = {}
    if isinstance(known.get(key), str):
        return str(known[key])
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.relative_to(model_dir).as_posix()}\0".encode())
        with p.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    value = digest.hexdigest()
    known[key] = value
    cache_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(index_path, json.dumps(known))
    return value


def local_model_dir(path_or_name: str) -> Path:
    """A directory holding the model's files: a local path, or a hub name already cached."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(path_or_name, local_files_only=True))
    except Exception as exc:  # not cached, bad name: the hub raises many types
        raise UnsupportedModelError(f"no local copy of {path_or_name!r} to export ({exc})") from exc


def read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        return None
    if not all((directory / f).is_file() for f in (FP32_FILE, INT8_FILE, TOKENIZER_FILE)):
        return None
    return manifest


def ensure_export(models_root: Path, model_path: str) -> tuple[Path, dict[str, Any]]:
    """The export of this model's current files, made now (with torch) if there is none yet."""
    model_dir = local_model_dir(model_path)
    models_root.mkdir(parents=True, exist_ok=True)
    digest = content_hash(model_dir, models_root)
    final = models_root / f"onnx-{digest[:24]}-f{EXPORT_FORMAT}"
    failed = models_root / f"{final.name}.failed"
    manifest = read_manifest(final)
    if manifest is not None:
        return final, manifest
    if failed.is_file():
        raise UnsupportedModelError(failed.read_text(encoding="utf-8").strip())
    _remove_stale(models_root)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=models_root))
    try:
        from index.onnx_export import export

        export(str(model_dir), tmp, model_hash=digest)
        # If another process renamed its (identical) export first, use that one.
        with contextlib.suppress(OSError):
            tmp.rename(final)
    except UnsupportedModelError as exc:
        _write_atomic(failed, str(exc))
        raise
    except Exception as exc:  # disk full, killed worker...: not remembered, tried again next run
        raise UnsupportedModelError(f"export failed: {type(exc).__name__}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    manifest = read_manifest(final)
    if manifest is None:
        raise UnsupportedModelError(f"the export in {final} is incomplete")
    return final, manifest


def _remove_stale(models_root: Path) -> None:
    now = time.time()
    for path in models_root.glob(".export-*"):
        try:
            if now - path.stat().st_mtime > _STALE_EXPORT_S:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


class OnnxRunner:
    """Tokenizer + ONNX session + the model's head (pooling, dense, normalise) in numpy."""

    def __init__(
        self,
        directory: Path,
        manifest: dict[str, Any],
        *,
        int8: bool,
        threads: int | None = None,
        batch_size: int = 32,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # Idle intra-op threads sleep instead of spinning: a spinning thread keeps a core busy
        # for a while after each call, which on 2 cores took it from the SQLite query that
        # follows (lexical search 9.6 -> 18.5 ms p50 inside the answer path at 108k chunks)
        # and from whatever else shares the machine (the UI beside a sync).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads:
            options.intra_op_num_threads = threads
        model_file = directory / (INT8_FILE if int8 else FP32_FILE)
        # ONNX Runtime reads and prepares the graph without holding the GIL, so the session is
        # made on a thread: a cold question imports LangChain and Chroma meanwhile. The first
        # embedding waits for it (and raises what its creation raised).
        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx-session")
        self._session: Future[Any] = loader.submit(
            ort.InferenceSession, str(model_file), options, providers=["CPUExecutionProvider"]
        )
        loader.shutdown(wait=False)
        self.inputs: list[str] = list(manifest["inputs"])
        self.pad_id = int(manifest["pad_id"])
        self.pad_type_id = int(manifest["pad_type_id"])
        self.max_seq_length = int(manifest["max_seq_length"])
        self.dimension = int(manifest["dimension"])
        self.batch_size = batch_size
        self.head: list[dict[str, Any]] = list(manifest["head"])
        with np.load(directory / "head.npz") as arrays:
            self.arrays = {k: arrays[k] for k in arrays.files}
        self._tokenizer_file = str(directory / TOKENIZER_FILE)
        self.encoder = Tokenizer.from_file(self._tokenizer_file)
        self.encoder.enable_truncation(max_length=self.max_seq_length)

    @property
    def session(self) -> Any:
        """The ONNX Runtime session, once its creation (started in ``__init__``) is done."""
        return self._session.result()

    @cached_property
    def counter(self) -> Any:
        """An untruncated copy of the tokenizer, for measuring text; only indexing needs it,
        so a question does not pay for parsing the tokenizer twice."""
        from tokenizers import Tokenizer

        return Tokenizer.from_file(self._tokenizer_file)

    def token_spans(self, text: str) -> list[Span]:
        enc = self.counter.encode(text, add_special_tokens=False)
        return [(int(a), int(b)) for a, b in enc.offsets]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [
            len(e.ids) for e in self.counter.encode_batch(list(texts), add_special_tokens=False)
        ]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one per text; batches of similar length so little is padding."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        if len(texts) == 1:  # a question: no batch machinery
            encodings = [self.encoder.encode(texts[0])]
        else:
            encodings = self.encoder.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        lengths = [len(encodings[i].ids) for i in order]
        for start, end in plan_batches(lengths, self.batch_size):
            rows = order[start:end]
            width = lengths[end - 1]
            ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
            types = np.full((len(rows), width), self.pad_type_id, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                enc = encodings[i]
                n = len(enc.ids)
                ids[r, :n] = enc.ids
                types[r, :n] = enc.type_ids
                mask[r, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self.session.run(None, {k: feeds[k] for k in self.inputs})[0]
            out[rows] = self._apply_head(np.asarray(hidden, dtype=np.float32), mask)
        return out

    def _apply_head(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x = hidden
        weights = mask[..., None].astype(np.float32)
        for i, step in enumerate(self.head):
            if step["type"] == "pooling":
                x = np.concatenate([_pool(x, mask, weights, m) for m in step["modes"]], axis=-1)
            elif step["type"] == "dense":
                x = x @ self.arrays[f"w{i}"].T
                if f"b{i}" in self.arrays:
                    x = x + self.arrays[f"b{i}"]
                if step["activation"] == "tanh":
                    x = np.tanh(x)
            elif step["type"] == "normalize":
                x = _normalise(x)
        return _normalise(x)  # our callers always ask for unit vectors (normalize_embeddings)


#: What one more ``session.run`` costs, in word pieces of batch width: every run passes all the
#: layers' weights (42 MB fp32) through the caches and pays per-operator overhead. On this
#: project's 2-core machine a 2-piece input took 1.7-2 ms and each further piece about 0.2 ms
#: (one thread, back to back); the answerer's dozen sentences embedded equally fast with any
#: value from 4 to 24 (bench/README.md, "Answer latency, second pass").
RUN_COST_PIECES = 12


def plan_batches(lengths: Sequence[int], batch_size: int) -> list[tuple[int, int]]:
    """Split texts sorted by length (``lengths`` ascending) into ``[start, end)`` batches of at
    most ``batch_size`` that minimise the word pieces computed, padding included, plus
    RUN_COST_PIECES per batch.

    Fixed slices of ``batch_size`` pad every text to the longest of its slice: the extractive
    answerer's dozen sentences of 10 to 80 pieces were computed as a dozen of 80, and one
    transformer pass per sentence pays the weights' trip through memory a dozen times; the
    cheapest split lies in between. (Each text's vector is the same either way, up to float
    rounding: padding is masked.)
    """
    n = len(lengths)
    best = [0.0] * (n + 1)  # best[j]: cheapest cost of the first j texts
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        best[j] = float("inf")
        for i in range(max(0, j - batch_size), j):
            cost = best[i] + RUN_COST_PIECES + (j - i) * lengths[j - 1]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches: list[tuple[int, int]] = []
    j = n
    while j > 0:
        batches.append((cut[j], j))
        j = cut[j]
    return batches[::-1]


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _pool(x: np.ndarray, mask: np.ndarray, weights: np.ndarray, mode: str) -> np.ndarray:
    """sentence-transformers' Pooling modes for right-padded batches, in numpy."""
    rows = np.arange(x.shape[0])
    if mode == "cls":
        return x[rows, mask.argmax(axis=1)]
    if mode == "lasttoken":
        return x[rows, mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)]
    if mode == "max":
        return np.where(weights > 0, x, -np.inf).max(axis=1)
    total = (x * weights).sum(axis=1)
    count = np.maximum(weights.sum(axis=1), 1e-9)
    if mode == "mean":
        return total / count
    if mode == "mean_sqrt_len_tokens":
        return total / np.sqrt(count)
    raise UnsupportedModelError(f"pooling mode {mode!r} is not supported")
