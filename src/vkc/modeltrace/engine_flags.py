"""Engine flags that change what the V2 runner's sampler launches (features; the worker half imports vLLM).

Each feature here is one vLLM serving switch, as ``vllm serve`` takes it, and the variant option of
the same name (:mod:`vkc.modelcfg.variants`, ``MODEL@return-sampling-mask=true``):

* ``sampling-mask`` -- ``--return-sampling-mask`` (``EngineArgs.return_sampling_mask``): the sampler
  returns each request's kept support (``SamplingMaskTensors.from_logits``:
  ``_compact_sampling_mask_kernel``), with ``--logprobs-mode processed_logprobs`` as vLLM requires it;
  vLLM then never takes FlashInfer's fused sampler;
* ``nans`` -- ``VLLM_COMPUTE_NANS_IN_LOGITS=1`` (vLLM's environment switch, read by ``Sampler``):
  the NaN count of every logits row before sampling (``get_num_nans``: ``_num_nans_kernel``).

:data:`FLAG_FEATURES` maps a feature to (variant option, its one value, how it is set); what the
worker mirrors is ``FEATURE_STEPS["sampling-mask"]`` / ``["nans"]`` of the checklist.
"""
from __future__ import annotations

import os
from typing import Any

__all__ = ["ENGINE_ARGS", "ENV", "FLAG_FEATURES", "install"]

# feature -> (variant option, value): the option names vLLM's flag
FLAG_FEATURES: dict[str, tuple[str, str]] = {
    "sampling-mask": ("return-sampling-mask", "true"),
    "nans": ("compute-nans", "true"),
}
# vLLM requires processed logprobs with the mask (VllmConfig._verify_sampling_replay_config)
ENGINE_ARGS: dict[str, dict[str, Any]] = {"sampling-mask": {"return_sampling_mask": True,
                                                          "logprobs_mode": "processed_logprobs"}}
ENV: dict[str, dict[str, str]] = {"nans": {"VLLM_COMPUTE_NANS_IN_LOGITS": "1"}}


def install(features: tuple[str, ...]) -> None:
    """Before vLLM is imported: the features' environment switches; then the engine config with
    their ``EngineArgs`` fields."""
    kw: dict[str, Any] = {}
    for f in features:
        os.environ.update(ENV.get(f, {}))
        kw.update(ENGINE_ARGS.get(f, {}))
    if not kw:
        return
    from vkc.modeltrace import startup

    real_config = startup.engine_config

    def engine_config(model_dir: str, opts: dict[str, Any]) -> Any:
        from vllm.engine import arg_utils

        real_args = arg_utils.EngineArgs

        def with_flags(**args: Any) -> Any:
            return real_args(**args, **kw)

        arg_utils.EngineArgs = with_flags  # type: ignore[misc,assignment]
        try:
            return real_config(model_dir, opts)
        finally:
            arg_utils.EngineArgs = real_args  # type: ignore[misc]

    startup.engine_config = engine_config  # type: ignore[assignment]
