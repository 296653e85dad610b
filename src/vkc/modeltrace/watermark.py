"""Text watermarking in the traced step (feature ``watermark``; the worker half imports vLLM).

``vllm serve --watermark-config '{"key": ..., "algorithm": "gumbel"}'`` (:data:`WATERMARK_CONFIG`),
as the variant option ``watermark=gumbel`` names it (:mod:`vkc.modelcfg.variants`).  What it
mirrors (each a checklist step, ``FEATURE_STEPS["watermark"]``):

* the engine config gets ``watermark_config`` (``EngineArgs.create_watermark_config``);
* ``GPUModelRunner.load_model`` builds a ``GPUWatermarkSampler`` (``create_watermarker(config)``, the
  config's context deduplication) with the plain sampler's arguments instead of the ``Sampler``;
* the engine's input processing resolves each request's ``watermarking``
  (``InputProcessor.apply_watermarking`` with ``VllmConfig._check_supports_watermarking``).

The sampler's random path then takes the watermark: the repeated-context search over each request's
tokens and the keyed Philox Gumbel sampling (``_repeated_context_mask_kernel``,
``_philox_gumbel_kernel``); greedy requests keep ordinary greedy sampling, as vLLM says.
"""
from __future__ import annotations

from typing import Any

__all__ = ["WATERMARK_CONFIG", "WATERMARK_CONFIGS", "install", "resolve_watermarking", "watermark_sampler"]

WATERMARK_CONFIG: dict[str, Any] = {"key": 20261203, "algorithm": "gumbel"}   # context width 4, philox, single_turn
WATERMARK_CONFIGS: dict[str, dict[str, Any]] = {"gumbel": WATERMARK_CONFIG}


def install() -> None:
    """Before the worker starts: the engine config with :data:`WATERMARK_CONFIG`."""
    from vkc.modeltrace import startup

    real_config = startup.engine_config

    def engine_config(model_dir: str, opts: dict[str, Any]) -> Any:
        from vllm.engine import arg_utils

        real_args = arg_utils.EngineArgs

        def with_watermark(**kw: Any) -> Any:
            return real_args(**kw, watermark_config=dict(WATERMARK_CONFIG))

        arg_utils.EngineArgs = with_watermark  # type: ignore[misc,assignment]
        try:
            return real_config(model_dir, opts)
        finally:
            arg_utils.EngineArgs = real_args  # type: ignore[misc]

    startup.engine_config = engine_config  # type: ignore[assignment]


def watermark_sampler(vllm_config: Any, **sampler_kwargs: Any) -> Any:
    """``GPUModelRunner.load_model``'s sampler when the engine has a watermark config."""
    from vllm.v1.watermarking import create_watermarker
    from vllm.v1.watermarking.gpu_sampler import GPUWatermarkSampler

    wm = vllm_config.watermark_config
    return GPUWatermarkSampler(create_watermarker(wm), deduplicate_contexts=wm.deduplicate_contexts,
                               deduplicate_contexts_max_history=wm.deduplicate_contexts_max_history,
                               vllm_config=vllm_config, **sampler_kwargs)


def resolve_watermarking(vllm_config: Any, params: Any) -> Any:
    """``InputProcessor.apply_watermarking(params, resolve_watermarking(params))`` (a no-op without
    a watermark config: the request keeps ``watermarking=None``, as vLLM's sampler reads it then)."""
    if getattr(vllm_config, "watermark_config", None) is None:
        return params
    on = vllm_config._check_supports_watermarking(params)
    params._watermarking_skipped = params._watermarking_skipped or (params.watermarking is not False and not on)
    params.watermarking = on
    return params
