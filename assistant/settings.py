"""The one settings object: environment variables prefixed ``ASSISTANT_``, CLI flags on top.

``Settings`` extends the index layer's :class:`~index.settings.IndexSettings` (storage, model,
chunking, Chroma) with what answering and the UI need, so one object and one environment
configure everything while ``index/`` never imports this module. Every field carries a
description, so these classes are the configuration reference (``assistant --help`` and the
README point here).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from index.settings import BUNDLED_MODEL, IndexSettings

__all__ = ["BUNDLED_MODEL", "IndexSettings", "Settings"]


class Settings(IndexSettings):
    """Configuration for indexing (inherited), answering and the UI."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="forbid")

    answerer: Literal["extractive", "fitted"] = Field(
        default="extractive",
        description=(
            "Answerer used without an LLM: 'extractive' (sentence scorer) or 'fitted' "
            "(question analysis with spaCy and a logistic model fitted on labelled questions, "
            "assistant/reader/; gives Answer.short). The default is the one that measured "
            "better on held-out questions (bench/README.md)."
        ),
    )
    k: int = Field(default=5, ge=1, le=50, description="Passages retrieved per question.")
    recency: float = Field(
        default=0.5,
        ge=0,
        description=(
            "For questions about the current state ('who is', 'latest', 'now'), scale each "
            "passage by max(1 / (1 + recency * age in years), 0.5), age counted from the as-of "
            "date (Onyx's age decay), on top of `age_prior`; undated articles get the floor. "
            "0 turns it off. Chosen on the RealTime QA fit half (bench/realtimeqa_time.py "
            "--grid): 0.5 and 2 gave the same MRR gain over 0 (+0.004), so the smaller weight."
        ),
    )
    age_prior: float = Field(
        default=0.0,
        ge=0,
        description=(
            "For every question, scale each passage by max(1 / (1 + age_prior * age in "
            "years), 0.5), age counted from `age_grace_days` before the as-of date: a question "
            "asked on a date mostly concerns the news just before it. 0 (default) turns it off. "
            "On the RealTime QA fit half the best retrieval weight was 5 with a 7-day grace "
            "(MRR@10 0.730 -> 0.798; report half 0.794 -> 0.841), but the answers did not follow "
            "(gold in answer: fit 0.618 both, report 0.615 -> 0.596) and one dated-story answer "
            "was lost to a reader decline, so it stays an opt-in (bench/README.md)."
        ),
    )
    age_grace_days: int = Field(
        default=7,
        ge=0,
        description=(
            "Days before the as-of date that the age prior treats as age 0 (no preference "
            "among them: a later report of a story is not a better source than the first)."
        ),
    )
    date_window: Literal["prefer", "filter", "off"] = Field(
        default="prefer",
        description=(
            "What a date in the question ('this week', 'in October') does: 'prefer' adds the "
            "window's own hybrid ranking to the fusion (in-window passages rank up, others stay "
            "reachable), 'filter' keeps only in-window articles when there are any, 'off' "
            "ignores it. 'prefer' won on the RealTime QA fit half (gold hit@1 0.637 vs 0.627 "
            "filter, 0.510 off): quiz dates ('this week', 'a year ago') do not always bound "
            "the article that answers."
        ),
    )
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
    ui_auth: SecretStr | None = Field(
        default=None,
        description="'user:password' to require a login in the UI. Required (or an explicit "
        "`--no-auth`) when the UI binds to an address other than loopback.",
    )
    max_upload_mb: float = Field(default=20.0, gt=0, description="Largest file the UI accepts.")
    ui_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Questions the UI answers at once (one per core is enough: the model is shared).",
    )
    ui_stream_refresh_s: float = Field(
        default=0.2,
        ge=0,
        description="Least seconds between chat updates while an answer streams (the first "
        "words show at once): each update re-renders the whole conversation in the browser.",
    )
    ui_max_rows: int = Field(
        default=200,
        ge=1,
        description="Most rows the Indexed articles table shows; the search box narrows them.",
    )
    ui_queue_size: int = Field(
        default=64,
        ge=1,
        description="Questions that may wait; past this a user is told the queue is full, "
        "rather than memory growing without bound.",
    )
