"""The one settings object: environment variables prefixed ``ASSISTANT_``, CLI flags on top.

Every field carries a description, so this class is the configuration reference
(``assistant --help`` and the README point here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
# What ``embedding_backend=auto`` runs on a machine without a GPU, chosen by measurement
# (bench/README.md): fp32 ONNX gives torch's vectors (cosine >= 0.9999 on news text) with a
# start free of torch; int8 is faster but lost 0.017 of dev MRR@10 (0.778 vs 0.795), more than
# the 0.01 we allow, so it stays an opt-in.
DEFAULT_CPU_BACKEND = "onnx"


def _default_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "article-assistant"


class Settings(BaseSettings):
    """Configuration for indexing, answering and the UI."""

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
    max_file_mb: float = Field(
        default=20.0,
        gt=0,
        description="Files larger than this are refused (reported, not indexed).",
    )
    k: int = Field(default=5, ge=1, le=50, description="Passages retrieved per question.")
    llm: str | None = Field(
        default=None,
        description=(
            "Answer with an LLM: 'ollama:<model>', 'openai:<model>' (with llm_base_url for any "
            "OpenAI-compatible server) or 'llamacpp:<path.gguf>'. Unset: extractive answers."
        ),
    )
    llm_base_url: str | None = Field(
        default=None, description="Base URL of an OpenAI-compatible server."
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="API key for the LLM server, if any."
    )
    llm_temperature: float = Field(default=0.0, ge=0, le=2, description="LLM sampling temperature.")
    llm_max_tokens: int = Field(
        default=400, ge=16, description="Most tokens an LLM answer may use."
    )
    ui_host: str = Field(default="127.0.0.1", description="Address the chat UI binds to.")
    ui_port: int = Field(default=7860, description="Port of the chat UI.")
    ui_auth: str | None = Field(
        default=None, description="'user:password' to require a login in the UI."
    )
    max_upload_mb: float = Field(default=20.0, gt=0, description="Largest file the UI accepts.")
    ui_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Questions the UI answers at once (one per core is enough: the model is shared).",
    )
    ui_queue_size: int = Field(
        default=64,
        ge=1,
        description="Questions that may wait; past this a user is told the queue is full, "
        "rather than memory growing without bound.",
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
