"""The serving options a variant model id names, as trace options (parent side; no vLLM import).

``MODEL@kv-cache-dtype=fp8,speculative=ngram`` (:mod:`vkc.modelcfg.variants`) is MODEL traced with
``TraceOptions.kv_cache_dtype = "fp8"`` and the ``spec`` serving feature (n-gram speculative decoding,
:mod:`vkc.modeltrace.spec`); ``attention-backend=NAME`` sets ``TraceOptions.attention_backend``;
``lora=RANK`` is the ``lora`` serving feature at ``--max-lora-rank RANK`` (:mod:`vkc.modeltrace.lora`).
Nothing else changes: a plain model id keeps its options (and its trace's cache key) as they are.
"""
from __future__ import annotations

import dataclasses

from .features import features_of, with_features, with_lora
from .records import TraceOptions

__all__ = ["serving_variant"]


def serving_variant(options: TraceOptions, model_id: str) -> TraceOptions:
    """``options`` with the serving options ``model_id`` names (``options`` itself for a plain id)."""
    from vkc.modelcfg.variants import parse_variant

    v = parse_variant(model_id)
    if v is None or not v.options:
        return options
    out = options
    if v.option("speculative") == "ngram":
        out = with_features(out, (*features_of(out), "spec"))
    if (rank := v.option("lora")) is not None:
        out = with_lora(out, int(rank))
    if (dtype := v.option("kv-cache-dtype")) is not None:
        out = dataclasses.replace(out, kv_cache_dtype=dtype)
    if (backend := v.option("attention-backend")) is not None:
        out = dataclasses.replace(out, attention_backend=backend)
    return out
