"""The index layer's settings: where the index lives, which model embeds, how text is chunked,
and where Chroma is. ``ASSISTANT_*`` environment variables, like the application's settings,
which extend this class (``assistant.settings.Settings``) so one object configures everything.

Every field carries a description, so this class is the configuration reference for indexing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
# What ``embedding_backend=auto`` runs on a machine without a GPU, chosen by measurement
# (bench/README.md): fp32 ONNX gives torch's vectors (cosine >= 0.9999 on news text) with a
# start free of torch; int8 is faster but lost 0.049 of dev MRR@10 (0.743 vs 0.7925, re-measured
# in the fourth session of 2026-12-01; 0.017 in the first pass), more than
# the 0.01 we allow, so it stays an opt-in.
DEFAULT_CPU_BACKEND = "onnx"


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "article-assistant"


class IndexSettings(BaseSettings):
    """Configuration of the index: storage, embedding model, chunking, Chroma address."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="forbid")

    home: Path = Field(
        default_factory=_default_home,
        description="Directory holding all index state (catalog, vectors, lexical index, uploads).",
    )
    embedding_model: str = Field(
        default=BUNDLED_MODEL,
        description=(
            "Sentence-transformers model: the bundled all-MiniLM-L6-v2 (default, offline), "
            "a local model directory, or a hub name (needs ASSISTANT_ALLOW_DOWNLOADS=1 unless "
            "already cached). 'fake' selects a deterministic test embedder."
        ),
    )
    embedding_batch_size: int = Field(default=32, ge=1, description="Chunks per embedding batch.")
    embedding_backend: Literal["auto", "torch", "onnx", "onnx-int8"] = Field(
        default="auto",
        description=(
            "What runs the embedding model: 'torch' (sentence-transformers), 'onnx' (ONNX Runtime, "
            "fp32, same vectors), 'onnx-int8' (per-channel int8 weights, faster). 'auto': torch "
            "on a GPU machine, else the measured CPU default. The ONNX export is made from the "
            "installed weights on first use (into home/models); a model it cannot handle falls "
            "back to torch with a logged reason. Changing it re-embeds into a new index."
        ),
    )
    embedding_export_dir: Path | None = Field(
        default=None,
        description="Where ONNX exports of embedding models are kept (keyed by the model's "
        "content hash, so homes can share one). Unset: `home`/models.",
    )
    embedding_device: str | None = Field(
        default=None,
        description="Device for the torch backend ('cpu', 'cuda', 'mps'). Unset: "
        "sentence-transformers picks (a GPU when present).",
    )
    allow_downloads: bool = Field(
        default=False,
        description="Let sentence-transformers fetch a model from the hub. Off: nothing downloads.",
    )
    chunk_tokens: int = Field(
        default=128,
        ge=16,
        description="Target word pieces per chunk (title prefix included); never above the model's limit.",
    )
    chroma_host: str | None = Field(
        default=None, description="Chroma server host. Unset: embedded Chroma under `home`."
    )
    chroma_port: int = Field(default=8000, description="Chroma server port (with chroma_host).")
    hnsw_ef_search: int = Field(
        default=200,
        ge=10,
        description=(
            "Candidates Chroma's HNSW graph explores per question. Chroma's default (100) "
            "missed some of the exact 30 nearest chunks for 21% of 229 BBC questions; 200 "
            "for 8%, at +0.1 ms a question over 10,795 chunks and +1.7 ms over 108k "
            "(bench/README.md). New indexes get it; `assistant index` stores a changed value "
            "on an existing one, which processes started afterwards use (a Chroma server "
            "after a restart)."
        ),
    )
    max_file_mb: float = Field(
        default=20.0,
        gt=0,
        description="Files larger than this are refused (reported, not indexed).",
    )

    allow_private_urls: bool = Field(
        default=False,
        description=(
            "Fetch article URLs whose host is on a private, loopback, link-local or reserved "
            "address (your own intranet). Off: only public addresses, in the UI and the CLI "
            "alike, checked on every redirect; a URL typed into the UI must not make the "
            "server read its own network (cloud metadata, admin pages)."
        ),
    )
    url_timeout: float = Field(
        default=20.0,
        gt=0,
        description="Seconds one URL fetch may take in all (redirects and body included).",
    )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def models_dir(self) -> Path:
        """Where ONNX exports of embedding models live."""
        return (self.embedding_export_dir or self.home / "models").expanduser()

    @property
    def uses_server(self) -> bool:
        """True when vectors live in a Chroma server rather than under ``home``."""
        return bool(self.chroma_host)

    @property
    def store_location(self) -> str:
        """Human-readable location of the vector store."""
        if self.chroma_host:
            return f"http://{self.chroma_host}:{self.chroma_port}"
        return str(self.home / "chroma")
