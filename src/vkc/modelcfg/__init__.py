"""vkc.modelcfg: resolve a model's config.json into a normalised :class:`ModelConfig`.

Entry point: :func:`load_model` (``MODEL`` = Hugging Face id or path to a config.json).

Where the config comes from (``ModelConfig.origin``):
  * ``"file"``     MODEL is a config.json path (or a folder holding one);
  * ``"hub"``      fetched with ``huggingface_hub.hf_hub_download`` from ``endpoint`` /
                   ``HF_ENDPOINT`` (read at call time), or read from the HF cache when offline
                   (``offline=True`` / ``HF_HUB_OFFLINE``) or when the hub fails (with a warning);
  * ``"snapshot"`` a config bundled with vkc (15 models, ``snapshots/``), used when offline or
                   when the hub fails and the cache has no copy; always with a warning.
Anything else -> :class:`vkc.errors.ModelError` (one-line message + hint).

``model_to_json`` returns every ModelConfig field (the normalised values plus ``warnings``,
``sources`` and ``origin``, which tells hub data from a bundled snapshot), in declaration
order, with tuples as lists.  ``format_model`` is the human text form.
"""
from __future__ import annotations

from vkc.records import ModelConfig

from .fetch import fetch_config
from .normalise import normalise
from .render import format_model, model_to_json
from .snapshots import bundled_ids

DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# Without --model, a kernel that vLLM does not launch for DEFAULT_MODEL (MoE, MLA, hybrid
# linear attention, ...) is collected at the first of these bundled models it applies to.
DEFAULT_MODELS = (DEFAULT_MODEL, "Qwen/Qwen3-30B-A3B", "deepseek-ai/DeepSeek-V3", "openai/gpt-oss-120b",
                  "Qwen/Qwen3-Next-80B-A3B-Instruct", "moonshotai/Kimi-K2-Instruct")

__all__ = ["DEFAULT_MODEL", "DEFAULT_MODELS", "ModelConfig", "bundled_ids", "format_model", "load_model", "load_model_cached", "model_to_json"]


def load_model(model: str, *, endpoint: str | None = None, offline: bool | None = None) -> ModelConfig:
    """Resolve MODEL (hub id or config.json path) to a validated, normalised ModelConfig.

    ``endpoint`` overrides ``HF_ENDPOINT``; ``offline`` (default: ``HF_HUB_OFFLINE``) forbids
    network access: HF cache first, then the bundled snapshot.
    """
    raw = fetch_config(model, endpoint=endpoint, offline=offline)
    return normalise(raw.config, model_id=raw.model_id, origin=raw.origin,
                     sources=raw.sources, warnings=raw.warnings)


_CACHED: dict[tuple[str, str | None, str | None], ModelConfig] = {}


def load_model_cached(model: str) -> ModelConfig:
    """:func:`load_model` once per process for each (model, HF_ENDPOINT, HF_HUB_OFFLINE):
    batch workers and the no-model fallback resolve the same few models many times."""
    import os

    key = (model, os.environ.get("HF_ENDPOINT"), os.environ.get("HF_HUB_OFFLINE"))
    if key not in _CACHED:
        _CACHED[key] = load_model(model)
    return _CACHED[key]
