"""Export a sentence-transformers model to ONNX (fp32 and per-channel int8), once, with torch.

Only the transformer runs inside the ONNX graph; pooling, dense layers and normalisation are
read from the loaded model's own modules and recorded in a manifest, so the runtime side
(index/onnx_embedder.py) reproduces sentence-transformers without importing torch. Every
export is checked against sentence-transformers on probe texts (with padding in the batch)
before it is accepted: a graph that does not reproduce the model is refused, never served.

The fp32 graph is then rewritten by ONNX Runtime's transformer optimizer (fused attention,
embedding + LayerNorm, skip LayerNorm, bias GELU; it ships with onnxruntime, nothing is
downloaded): about 40 nodes instead of 600, which loads faster and runs faster, with the same
vectors (it must pass the same check, else the plain graph is kept). The attention is exported
in its "eager" form because the optimizer recognises that pattern and not SDPA's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

EXPORT_FORMAT = 2  # bump when the files or manifest change: old exports are then ignored
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
MIN_FP32_COSINE = 0.9999
_SUPPORTED_POOLING = {"cls", "max", "mean", "mean_sqrt_len_tokens", "lasttoken"}
_ACTIVATIONS = {"Identity": "identity", "Tanh": "tanh"}

# Probe texts for the acceptance check: news-like, different lengths (so the batch is padded),
# one past the model's length limit (so truncation is exercised too).
_PROBES = [
    "The central bank held interest rates at 4.5% on Thursday, citing stubborn inflation.",
    "Shares fell.",
    "Talks between the two delegations resumed in Geneva after a week-long pause, officials "
    "said, with tariffs on steel and rare earths at the top of the agenda. " * 12,
    "Who won the match?",
]


class UnsupportedModelError(Exception):
    """The model cannot be run by the ONNX backend; sentence-transformers must run it."""


def _pooling_modes(module: Any) -> list[str]:
    mode = getattr(module, "pooling_mode", None)
    if mode is None and hasattr(module, "get_pooling_mode_str"):  # sentence-transformers 5
        mode = module.get_pooling_mode_str()
    modes = [mode] if isinstance(mode, str) else list(mode or [])
    return [m for part in modes for m in str(part).split("+")]


def describe_head(model: Any) -> list[dict[str, Any]]:
    """The modules after the transformer as plain data; raises for any we cannot reproduce."""
    from torch import nn

    head: list[dict[str, Any]] = []
    for module in list(model)[1:]:
        kind = type(module).__name__
        if kind == "Pooling":
            modes = _pooling_modes(module)
            unknown = sorted(set(modes) - _SUPPORTED_POOLING)
            if not modes or unknown:
                raise UnsupportedModelError(f"pooling mode {unknown or modes} is not supported")
            if not getattr(module, "include_prompt", True):
                raise UnsupportedModelError("pooling that excludes the prompt is not supported")
            head.append({"type": "pooling", "modes": modes})
        elif kind == "Dense":
            activation = type(getattr(module, "activation_function", nn.Identity())).__name__
            if activation not in _ACTIVATIONS or getattr(module, "use_residual", False):
                raise UnsupportedModelError(f"dense layer with {activation} is not supported")
            linear = module.linear
            bias = linear.bias.detach().cpu().numpy() if linear.bias is not None else None
            head.append(
                {
                    "type": "dense",
                    "activation": _ACTIVATIONS[activation],
                    "weight": linear.weight.detach().cpu().numpy().astype(np.float32),
                    "bias": None if bias is None else bias.astype(np.float32),
                }
            )
        elif kind == "Normalize":
            head.append({"type": "normalize"})
        else:
            raise UnsupportedModelError(f"module {kind} is not supported")
    if not any(step["type"] == "pooling" for step in head):
        raise UnsupportedModelError("the model has no pooling module")
    return head


def _transformer_parts(model: Any) -> tuple[Any, Any, int]:
    first = model[0]
    if type(first).__name__ != "Transformer":
        raise UnsupportedModelError(f"first module is {type(first).__name__}, not a Transformer")
    if getattr(first, "do_lower_case", False):
        raise UnsupportedModelError("do_lower_case is not supported")
    if getattr(model, "default_prompt_name", None):
        raise UnsupportedModelError("a default prompt is not supported")
    tokenizer = model.tokenizer
    if not getattr(tokenizer, "is_fast", False) or not hasattr(tokenizer, "backend_tokenizer"):
        raise UnsupportedModelError("the model has no fast (Rust) tokenizer")
    if getattr(tokenizer, "padding_side", "right") != "right":
        raise UnsupportedModelError("left-padding tokenizers are not supported")
    hf_model = getattr(first, "auto_model", None) or getattr(first, "model", None)
    if hf_model is None:
        raise UnsupportedModelError("cannot reach the transformer inside the model")
    return hf_model, tokenizer, int(model.max_seq_length)


def _dimension(model: Any) -> int:
    get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(get())


def _export_graph(hf_model: Any, inputs: list[str], sample: dict[str, Any], path: Path) -> str:
    """The transformer's last hidden state as ONNX; dynamo exporter, TorchScript if it fails."""
    import torch

    class Wrapper(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = hf_model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            out = self.inner(**dict(zip(inputs, tensors, strict=True)), return_dict=True)
            return out.last_hidden_state

    wrapper = Wrapper().eval()
    args = tuple(sample[name] for name in inputs)
    errors = []
    for dynamo in (True, False):
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")
                if dynamo:
                    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
                    torch.onnx.export(
                        wrapper,
                        args,
                        str(path),
                        dynamo=True,
                        input_names=inputs,
                        output_names=["last_hidden_state"],
                        dynamic_shapes=tuple({0: batch, 1: seq} for _ in inputs),
                        external_data=False,
                        verbose=False,
                    )
                else:
                    torch.onnx.export(
                        wrapper,
                        args,
                        str(path),
                        dynamo=False,
                        input_names=inputs,
                        output_names=["last_hidden_state"],
                        dynamic_axes={
                            n: {0: "batch", 1: "seq"} for n in [*inputs, "last_hidden_state"]
                        },
                        opset_version=17,
                    )
            return "dynamo" if dynamo else "torchscript"
        except Exception as exc:  # exporters raise many types
            errors.append(f"{'dynamo' if dynamo else 'torchscript'}: {type(exc).__name__}: {exc}")
            path.unlink(missing_ok=True)
    raise UnsupportedModelError("torch.onnx.export failed (" + "; ".join(errors)[:600] + ")")


def _eager_attention(hf_model: Any) -> None:
    """Export attention as plain MatMul/Softmax (the form the ONNX optimizer fuses); a model
    that cannot switch keeps its own, and is simply exported unfused."""
    try:
        if hasattr(hf_model, "set_attn_implementation"):
            hf_model.set_attn_implementation("eager")
        else:
            hf_model.config._attn_implementation = "eager"
    except Exception as exc:  # transformers raises ValueError/ImportError for some models
        log.info("attention stays %s for export: %s", type(hf_model).__name__, exc)


def _fuse(src: Path, dst: Path, config: Any) -> dict[str, int]:
    """ONNX Runtime's transformer optimizer over ``src`` into ``dst``: the fused operators
    it made (none: ``dst`` is not written). Graph-level only (``opt_level=0``), so the file
    runs on any CPU; ONNX Runtime applies its own machine-specific passes at load."""
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    if getattr(config, "model_type", "") not in ("bert", "mpnet", "roberta", "xlm-roberta"):
        return {}
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        with _quiet_onnxruntime(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = optimize_model(
                str(src), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0
            )
        fused = {k: int(v) for k, v in model.get_fused_operator_statistics().items() if v}
        if fused:
            model.save_model_to_file(str(dst))
        return fused
    except Exception as exc:  # an unusual graph: keep the plain one
        log.info("transformer optimizer failed (%s); the plain graph is used", exc)
        return {}


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_onnxruntime():
        quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)


class _FromOnnxRuntime(logging.Filter):
    """Drops records that ONNX Runtime's Python tools log straight on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


@contextlib.contextmanager
def _quiet_onnxruntime() -> Iterator[None]:
    """Silence ONNX Runtime's optimizer (it logs every pass it tries) and ``quantize_dynamic``
    (a generic "pre-process" hint on the root logger) below ERROR, without changing the root
    logger's level, so other threads' records still pass while an export runs. The optimizer's
    modules put themselves on ``sys.path`` and log under bare names ("fusion_attention"), so
    their loggers are found by the file of the module that owns them."""
    quieted: list[tuple[logging.Logger, int]] = []
    for name, lg in list(logging.root.manager.loggerDict.items()):
        where = getattr(sys.modules.get(name), "__file__", "") or ""
        if isinstance(lg, logging.Logger) and ("onnxruntime" in name or "onnxruntime" in where):
            quieted.append((lg, lg.level))
            lg.setLevel(logging.ERROR)
    root_filter = _FromOnnxRuntime()
    logging.getLogger().addFilter(root_filter)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(root_filter)
        for lg, level in quieted:
            lg.setLevel(level)


def export(model_path: str, out_dir: Path, *, model_hash: str) -> dict[str, Any]:
    """Write model.onnx, model.int8.onnx, tokenizer.json, head.npz and manifest.json into
    ``out_dir`` (a fresh private directory; the caller renames it into place)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed"
    model = SentenceTransformer(model_path, device="cpu", local_files_only=True)
    hf_model, tokenizer, max_len = _transformer_parts(model)
    head = describe_head(model)
    inputs = [
        n
        for n in tokenizer.model_input_names
        if n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    if "input_ids" not in inputs or "attention_mask" not in inputs:
        raise UnsupportedModelError(f"unexpected tokenizer inputs {tokenizer.model_input_names}")
    sample = tokenizer(
        _PROBES[:2], padding=True, truncation=True, max_length=max_len, return_tensors="pt"
    )
    _eager_attention(hf_model)
    plain = out_dir / "model.plain.onnx"
    exporter = _export_graph(hf_model, inputs, dict(sample), plain)
    # int8 is quantised from the plain graph: the form whose quality was measured (bench/README).
    _quantize(plain, out_dir / INT8_FILE)
    fused = _fuse(plain, out_dir / FP32_FILE, hf_model.config)
    if not fused:
        plain.rename(out_dir / FP32_FILE)

    backend = tokenizer.backend_tokenizer
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(out_dir / TOKENIZER_FILE))
    arrays: dict[str, np.ndarray] = {}
    steps: list[dict[str, Any]] = []
    for i, step in enumerate(head):
        if step["type"] == "dense":
            arrays[f"w{i}"] = step.pop("weight")
            bias = step.pop("bias")
            if bias is not None:
                arrays[f"b{i}"] = bias
        steps.append(step)
    np.savez(out_dir / "head.npz", **arrays)  # type: ignore[arg-type]
    manifest = {
        "format": EXPORT_FORMAT,
        "model_hash": model_hash,
        "inputs": inputs,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "pad_type_id": int(getattr(tokenizer, "pad_token_type_id", 0) or 0),
        "max_seq_length": max_len,
        "dimension": int(_dimension(model)),
        "head": steps,
        "exporter": exporter,
        "fused": fused,
        "torch": torch.__version__,
        "platform": platform.machine(),
    }
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    try:
        manifest["check"] = _check(model, out_dir, manifest)
    except UnsupportedModelError:
        if not fused:
            raise
        log.warning("the fused graph differs from the model; using the plain graph")
        plain.replace(out_dir / FP32_FILE)
        manifest["fused"] = {}
        manifest["check"] = _check(model, out_dir, manifest)
    plain.unlink(missing_ok=True)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def _check(model: Any, out_dir: Path, manifest: dict[str, Any]) -> dict[str, float]:
    """Compare with sentence-transformers on the probes; refuse an export that differs."""
    from index.onnx_embedder import OnnxRunner

    reference = model.encode(
        _PROBES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    figures = {}
    for variant in ("fp32", "int8"):
        runner = OnnxRunner(out_dir, manifest, int8=variant == "int8", threads=1)
        got = np.asarray(runner.embed(_PROBES))
        cosine = (got * reference).sum(axis=1)
        figures[f"{variant}_min_cosine"] = round(float(cosine.min()), 6)
    if figures["fp32_min_cosine"] < MIN_FP32_COSINE:
        raise UnsupportedModelError(
            f"the exported graph does not reproduce the model (cosine {figures['fp32_min_cosine']})"
        )
    return figures
