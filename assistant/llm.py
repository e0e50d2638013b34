"""The LLM answerer's parts: chat models from a spec string, the grounded prompt, and the
citation check that keeps every ``[n]`` pointing at a passage that was actually given.

The chain (``assistant/chain.py``) composes these; this module knows nothing of retrieval.
Heavy work (loading a GGUF, importing a provider SDK) happens only when a spec asks for it.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import itertools
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import Field

from assistant.errors import AssistantError, ConfigError
from assistant.markers import GROUP as MARKER_GROUP
from assistant.markers import group_numbers
from assistant.types import NO_ANSWER
from prompts import render

if TYPE_CHECKING:
    from assistant.settings import Settings

__all__ = [
    "LlamaCppChatModel",
    "build_answer_messages",
    "check_markers",
    "condense_question",
    "make_chat_model",
    "stream_llm_answer",
]

log = logging.getLogger(__name__)

#: Earlier turns sent with a question: enough for "what did he say next?", not a context flood.
HISTORY_TURNS, HISTORY_CHARS = 3, 1000


# --- llama.cpp as a LangChain chat model ------------------------------------------------------

_LLAMAS: dict[tuple[str, int, int, int], tuple[Any, threading.Lock]] = {}
_LLAMAS_LOCK = threading.Lock()


def _load_llama(m: LlamaCppChatModel) -> tuple[Any, threading.Lock]:
    """One loaded model per GGUF, shared by every chat model built on it: loading costs
    seconds and memory, and a llama.cpp context is not reentrant, so it comes with a lock."""
    key = (m.model_path, m.n_ctx, m.n_threads, m.n_threads_batch)
    with _LLAMAS_LOCK:
        if key not in _LLAMAS:
            from llama_cpp import Llama

            llama = Llama(
                model_path=m.model_path,
                n_ctx=m.n_ctx,
                n_threads=m.n_threads,
                n_threads_batch=m.n_threads_batch,
                verbose=False,
            )
            meta = llama.metadata
            arch = meta.get("general.architecture", "")
            if arch.startswith("gemma") and "tokenizer.chat_template" not in meta:
                # Some Gemma GGUFs (the bundled 270m one among them) carry no chat template,
                # and llama.cpp would then fall back to Llama-2's [INST] format, which Gemma
                # never saw in training. Its own turn markers are the right ones.
                llama.chat_format = "gemma"
            if not _LLAMAS:
                atexit.register(_close_llamas)
            _LLAMAS[key] = (llama, threading.Lock())
        return _LLAMAS[key]


def _close_llamas() -> None:
    """Free models before interpreter teardown; in ``__del__`` at exit llama_cpp is half gone."""
    while _LLAMAS:
        _LLAMAS.popitem()[1][0].close()


class LlamaCppChatModel(BaseChatModel):
    """A local GGUF model through llama-cpp-python, streamed token by token.

    ``langchain_community`` (which has a ChatLlamaCpp) is a heavy dependency for one class;
    this is the small part we need. The model's own chat template is used when the GGUF has
    one. Construction is cheap: the file is loaded on the first call.
    """

    model_path: str = Field(description="Path of the .gguf file.")
    n_ctx: int = Field(default=4096, description="Context window in tokens.")
    # One token of a small model is too little work to split: llama.cpp's threads meet at
    # spinning barriers each step, and when another process holds a core the other thread waits.
    # Measured here (270m, 64 tokens, 2 shared cores): 1 thread 9-20 s, 2 threads 18-135 s.
    # Reading the prompt is big batches, where a free second core can pay.
    n_threads: int = Field(default=1, description="CPU threads generating tokens.")
    n_threads_batch: int = Field(default=2, description="CPU threads reading the prompt.")
    temperature: float = Field(default=0.0, description="Sampling temperature; 0 is greedy.")
    max_tokens: int = Field(default=400, description="Most tokens one answer may use.")
    repeat_penalty: float = Field(
        default=1.1, description="Small models loop at temperature 0; this breaks the loops."
    )

    @property
    def _llm_type(self) -> str:
        return "llamacpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "temperature": self.temperature}

    def _to_llama_messages(self, llama: Any, messages: list[BaseMessage]) -> list[dict[str, str]]:
        roles = {"system": "system", "human": "user", "ai": "assistant"}
        out = [{"role": roles.get(m.type, "user"), "content": m.text} for m in messages]
        if llama.chat_format == "gemma":
            # llama.cpp's "gemma" format drops system messages; Gemma's official template
            # puts the system text at the top of the first user turn, so do that here.
            system = "\n\n".join(m["content"] for m in out if m["role"] == "system")
            out = [m for m in out if m["role"] != "system"]
            if system and out and out[0]["role"] == "user":
                out[0] = {"role": "user", "content": f"{system}\n\n{out[0]['content']}"}
            elif system:
                out.insert(0, {"role": "user", "content": system})
        return out

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llama, lock = _load_llama(self)
        with lock:
            stream = llama.create_chat_completion(
                messages=self._to_llama_messages(llama, messages),
                stream=True,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                repeat_penalty=self.repeat_penalty,
                stop=stop or [],
            )
            for part in stream:
                choice = part["choices"][0]
                token = choice.get("delta", {}).get("content") or ""
                if not token:  # the role header and the final stop carry no text
                    continue
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=token))
                if run_manager:
                    run_manager.on_llm_new_token(token, chunk=chunk)
                yield chunk

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))


# --- the factory ----------------------------------------------------------------------------

_CACHED_LLAMACPP: dict[tuple[str, float, int], LlamaCppChatModel] = {}


def make_chat_model(settings: Settings) -> BaseChatModel:
    """The chat model that ``settings.llm`` names. Fakes come through here too, so tests take
    the same path as production."""
    spec = (settings.llm or "").strip()
    kind, _, name = spec.partition(":")
    kind, name = kind.strip().lower(), name.strip()
    if not name or kind not in {"ollama", "openai", "llamacpp", "fake"}:
        raise ConfigError(
            f"unknown LLM spec {spec!r}: expected ollama:MODEL, openai:MODEL or llamacpp:PATH"
        )
    temperature, max_tokens = settings.llm_temperature, settings.llm_max_tokens
    if kind == "fake":
        # An endless iterator of the same reply: the model answers every call alike.
        return GenericFakeChatModel(messages=itertools.repeat(name))
    if kind == "ollama":
        chat_ollama = _import("langchain_ollama", "llm").ChatOllama
        extra = {"base_url": settings.llm_base_url} if settings.llm_base_url else {}
        return chat_ollama(model=name, temperature=temperature, num_predict=max_tokens, **extra)
    if kind == "openai":
        chat_openai = _import("langchain_openai", "llm").ChatOpenAI
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
        return chat_openai(
            model=name,
            base_url=settings.llm_base_url,
            api_key=key,
            temperature=temperature,
            max_completion_tokens=max_tokens,
        )
    path = Path(name).expanduser()
    if not path.is_file():
        raise ConfigError(f"llamacpp: no GGUF file at {path}; give the path of a .gguf model")
    _import("llama_cpp", "llamacpp")
    key_ = (str(path.resolve()), temperature, max_tokens)
    if key_ not in _CACHED_LLAMACPP:
        # n_ctx 4096 and the thread counts are the class defaults (see there for why).
        _CACHED_LLAMACPP[key_] = LlamaCppChatModel(
            model_path=key_[0], temperature=temperature, max_tokens=max_tokens
        )
    return _CACHED_LLAMACPP[key_]


def _import(module: str, extra: str) -> Any:
    """A provider SDK, imported only when a spec needs it; missing means a missing extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{module} is not installed; run: pip install 'article-assistant[{extra}]'"
        ) from exc


# --- prompts --------------------------------------------------------------------------------

# Text that looks like our own delimiters (<passage>, </passages>, <question> ...). Inside an
# article it could end the data section early and smuggle in "instructions"; it is escaped.
_DELIMITER = re.compile(r"<(\s*/?\s*)(passages?|question|conversation)\b", re.IGNORECASE)


# Chat-template control tokens. Backends tokenize the formatted prompt with special tokens
# enabled (llama.cpp does), so "<end_of_turn><start_of_turn>model" inside an article would end
# the user turn for real and put the rest outside the data section. Their "<" is escaped.
# Mistral's tokenizers make "[INST]" and its kin control tokens too; their "[" is escaped.
_TEMPLATE_TOKEN = re.compile(
    r"<(?=\|)|<(?=\s*/?\s*(?:start_of_turn|end_of_turn|start_of_image|end_of_image|bos|eos|pad|"
    r"unk|mask|s)\s*>)|\[(?=\s*/?\s*(?:INST|SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS|"
    r"TOOL_RESULTS)\s*\])",
    re.IGNORECASE,
)


def _no_template_tokens(text: str) -> str:
    return _TEMPLATE_TOKEN.sub(lambda m: "&lt;" if m[0] == "<" else "&#91;", text)


def _as_data(text: str | None, fallback: str = "unknown") -> str:
    """Article-derived text made safe to place between our delimiters."""
    if text is None or not str(text).strip():
        return fallback
    text = _DELIMITER.sub(r"&lt;\1\2", _no_template_tokens(str(text)))
    # "[7]" inside an article reads as a citation marker, and a model may copy it as one.
    return MARKER_GROUP.sub(r"(\1)", text)


def _passage(n: int, doc: Document) -> str:
    meta = doc.metadata
    before = str(meta.get("context_before") or "").strip()
    context = _as_data("…" + before.split(None, 1)[-1], "(none)") if " " in before else "(none)"
    return render(
        "passage",
        n=n,
        title=_as_data(meta.get("title")),
        source=_as_data(meta.get("source")),
        published=_as_data(meta.get("published")),
        context=context,
        text=_as_data(doc.page_content, ""),
    )


def _history_messages(history: list[tuple[str, str]]) -> list[BaseMessage]:
    """Recent turns as chat messages. Old answers lose their markers: they pointed at other
    passages, and a model would happily repeat them."""
    out: list[BaseMessage] = []
    for user, bot in history[-HISTORY_TURNS:]:
        # An extractive answer quotes articles: their text must not bring template tokens in.
        bot = _no_template_tokens(_tidy(MARKER_GROUP.sub("", bot)))
        out.append(HumanMessage(_no_template_tokens(user[:HISTORY_CHARS])))
        out.append(AIMessage(bot[:HISTORY_CHARS] or "(no answer)"))
    return out


def build_answer_messages(
    question: str, docs: list[Document], history: list[tuple[str, str]]
) -> list[BaseMessage]:
    """System rules, recent history, then the numbered passages and the question."""
    system = render("answer_system", no_answer=NO_ANSWER, n_passages=len(docs))
    passages = "\n\n".join(_passage(n, doc) for n, doc in enumerate(docs, start=1))
    user = render(
        "answer_user", passages=passages, question=_as_data(question, ""), no_answer=NO_ANSWER
    )
    return [SystemMessage(system), *_history_messages(history), HumanMessage(user)]


@contextlib.contextmanager
def _server_errors() -> Iterator[None]:
    """An unreachable LLM server is an expected failure: one line saying what to do."""
    unreachable: list[type[BaseException]] = [ConnectionError]
    for module, name in (("httpx", "TransportError"), ("openai", "APIConnectionError")):
        with contextlib.suppress(ImportError, AttributeError):
            unreachable.append(getattr(importlib.import_module(module), name))
    try:
        yield
    except tuple(unreachable) as exc:
        raise AssistantError(
            f"the LLM server could not be reached ({exc}); start it, fix ASSISTANT_LLM_BASE_URL, "
            "or unset ASSISTANT_LLM for extractive answers"
        ) from exc


def stream_llm_answer(
    model: BaseChatModel, question: str, docs: list[Document], history: list[tuple[str, str]]
) -> Iterator[str]:
    """Text deltas of a grounded answer as the model produces them. No passages means nothing
    to ground on, so the decline comes without asking the model."""
    if not docs:
        yield NO_ANSWER
        return
    messages = build_answer_messages(question, docs, history)
    with _server_errors():
        for chunk in model.stream(messages):
            if chunk.text:
                yield chunk.text


def condense_question(model: BaseChatModel, question: str, history: list[tuple[str, str]]) -> str:
    """The follow-up rewritten to stand alone, so retrieval sees "Bessent" rather than "he".
    A bad rewrite must never be worse than none: empty or runaway output keeps the question."""
    if not history:
        return question
    lines = []
    for user, bot in history[-HISTORY_TURNS:]:
        lines.append(f"User: {_as_data(user[:HISTORY_CHARS], '')}")
        lines.append(f"Assistant: {_as_data(_tidy(MARKER_GROUP.sub('', bot))[:HISTORY_CHARS], '')}")
    prompt = render("condense", history="\n".join(lines), question=_as_data(question, ""))
    with _server_errors():
        text = model.invoke([HumanMessage(prompt)]).text.strip()
    text = re.sub(r"^(standalone|rewritten)?\s*question\s*:\s*", "", text, flags=re.IGNORECASE)
    text = next((line.strip() for line in text.splitlines() if line.strip()), "")
    text = text.strip("\"'“”‘’` ").strip()
    # A reply that echoes our own delimiters is the prompt coming back, not a question.
    if not text or len(text) > 3 * len(question) + 200 or _DELIMITER.search(text):
        return question
    return text


# --- citation check -------------------------------------------------------------------------


def _tidy(text: str) -> str:
    """Close the gaps a removed marker leaves ("claim [9]." -> "claim ."): runs of spaces,
    a space before punctuation, trailing spaces. Newlines (paragraphs, lists) stay."""
    text = re.sub(r"[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return text.strip()


def check_markers(text: str, n_passages: int) -> tuple[str, list[int]]:
    """Remove every citation marker that points at no passage, logging each; return the text and
    the sorted passage numbers it still cites.

    Grouped forms are rewritten as adjacent markers ("[1, 2]" -> "[1][2]") so each is one
    clickable citation. Removal repeats until nothing changes, because cutting "[9]" out of
    "[[9]9]" leaves a new "[9]" behind.
    """

    def fix(match: re.Match[str]) -> str:
        kept: list[int] = []
        for n in group_numbers(match[1]):
            if 1 <= n <= n_passages:
                if n not in kept:
                    kept.append(n)
            else:
                log.warning("removed citation [%d]: only %d passages were given", n, n_passages)
        return "".join(f"[{n}]" for n in kept)

    for _ in range(len(text) + 1):
        cleaned = MARKER_GROUP.sub(fix, text)
        if cleaned == text:
            break
        text = cleaned
    text = _tidy(text)
    cited = sorted({n for m in MARKER_GROUP.finditer(text) for n in group_numbers(m[1])})
    return text, cited
