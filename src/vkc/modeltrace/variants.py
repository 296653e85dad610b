"""The serving options a variant model id names, as trace options (parent side; no vLLM import).

``MODEL@kv-cache-dtype=fp8,speculative=ngram`` (:mod:`vkc.modelcfg.variants`) is MODEL traced with
``TraceOptions.kv_cache_dtype = "fp8"`` and the ``spec`` serving feature (n-gram speculative decoding,
:mod:`vkc.modeltrace.spec`); ``attention-backend=NAME`` sets ``TraceOptions.attention_backend``;
``sampling=MIX`` sets ``FeatureOptions.sampling`` (the requests' sampling mix, :mod:`vkc.modeltrace.mixes`).
``quantization=METHOD`` sets ``TraceOptions.quantization`` (vLLM's ``--quantization``: the bf16
checkpoint quantized online at load, e.g. ``fp8_per_tensor``).
``kda-prefill-backend=triton`` sets ``TraceOptions.kda_prefill_backend`` (vLLM's ``--kda-prefill-backend``).
``linear-backend=exllama`` / ``dtype=float16`` set ``TraceOptions.linear_backend`` / ``.dtype`` (vLLM's
``--linear-backend`` / ``--dtype``).
``deep-gemm=recorded`` (``flash-mla=recorded``, ``tilelang=recorded``) adds to ``TraceOptions.recorded``: the
worker installs that recording stand-in (:mod:`vkc.modeltrace.recorded`) before vLLM probes for the package;
``block-size=N`` sets
``TraceOptions.block_size`` (vLLM's ``--block-size``).
``lora=RANK`` is the ``lora`` serving feature at ``--max-lora-rank RANK`` (:mod:`vkc.modeltrace.lora`).
Nothing else changes: a plain model id keeps its options (and its trace's cache key) as they are.
"""
from __future__ import annotations

import dataclasses

from .engine_flags import FLAG_FEATURES
from .features import FeatureOptions, features_of, with_features, with_lora, with_sampling
from .recorded import RECORDED
from .records import TraceOptions

__all__ = ["serving_variant"]


def serving_variant(options: TraceOptions, model_id: str) -> TraceOptions:
    """``options`` with the serving options ``model_id`` names (``options`` itself for a plain id)."""
    from vkc.modelcfg.variants import parse_variant

    v = parse_variant(model_id)
    if v is None or not v.options:
        return options
    out = options
    if (spec := v.option("speculative")) is not None:      # ngram | ngram-block (vkc.modeltrace.spec.SPEC_CONFIGS)
        out = with_features(out, (*features_of(out), "spec"))
        assert isinstance(out, FeatureOptions)
        out = dataclasses.replace(out, speculative=spec)
    if (draft := v.option("draft-model")) is not None:     # --speculative-config's model (speculative=draft-model)
        if v.option("speculative") != "draft-model":
            from vkc.errors import ModelError

            raise ModelError(f"draft-model={draft} in {model_id!r} needs speculative=draft-model",
                             hint="MODEL@speculative=draft-model,draft-model=DRAFT")
        assert isinstance(out, FeatureOptions)
        out = dataclasses.replace(out, draft_model=draft)
    if v.option("reasoning-parser") is not None:           # qwen3 (vkc.modeltrace.thinking.REASONING_PARSERS)
        out = with_features(out, (*features_of(out), "sampler", "thinking"))
    if v.option("sampling") == "thinking" and v.option("reasoning-parser") is None:
        from vkc.errors import ModelError  # vLLM's InputProcessor refuses a budget without a reasoning config

        raise ModelError(f"sampling=thinking in {model_id!r} needs a reasoning parser",
                         hint="MODEL@reasoning-parser=qwen3,sampling=thinking")
    if v.option("watermark") is not None:                  # gumbel (vkc.modeltrace.watermark.WATERMARK_CONFIGS)
        out = with_features(out, (*features_of(out), "sampler", "watermark"))
    for feature, (key, _value) in sorted(FLAG_FEATURES.items()):   # engine flags (vkc.modeltrace.engine_flags)
        if v.option(key) is not None:
            out = with_features(out, (*features_of(out), "sampler", feature))
    if (mix := v.option("sampling")) is not None:
        out = with_sampling(out, mix)
    if (rank := v.option("lora")) is not None:
        out = with_lora(out, int(rank))
    if (dtype := v.option("kv-cache-dtype")) is not None:
        out = dataclasses.replace(out, kv_cache_dtype=dtype)
    if (backend := v.option("attention-backend")) is not None:
        out = dataclasses.replace(out, attention_backend=backend)
    if (quant := v.option("quantization")) is not None:
        out = dataclasses.replace(out, quantization=quant)
    if (kda := v.option("kda-prefill-backend")) is not None:
        out = dataclasses.replace(out, kda_prefill_backend=kda)
    if (linear := v.option("linear-backend")) is not None:
        out = dataclasses.replace(out, linear_backend=linear)
    if (dtype_ := v.option("dtype")) is not None:
        out = dataclasses.replace(out, dtype=dtype_)
    if recorded := tuple(sorted(k for k in RECORDED if v.option(k) == "recorded")):
        out = dataclasses.replace(out, recorded=recorded)
    if (bs := v.option("block-size")) is not None:
        out = dataclasses.replace(out, block_size=int(bs))
    return out
