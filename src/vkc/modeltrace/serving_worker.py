"""Model-trace worker with serving features: ``python -m vkc.modeltrace.serving_worker``.

The request and response are :mod:`vkc.modeltrace.worker`'s; ``options["features"]`` names the
features (``"sampler"``), ``options["sampling"]`` a sampling mix other than the default
(:mod:`vkc.modeltrace.mixes`).  Each traced step runs as the plain worker runs it -- the model forward's
events are the same -- and then, inside the same recording, the features on the step's logits
(:mod:`vkc.modeltrace.serving`).  A step's result gains ``features`` (what vLLM chose: model
runner, fused sampler) and ``features_s``.  The plain worker module is left as it is, so traces
without features keep their cache keys.
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
import traceback
from typing import Any

__all__ = ["main"]


def _with_features(real_run_step: Any, features: tuple[str, ...], mix: str = "serving") -> Any:
    def run_step(ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        from vkc.modeltrace.serving import feature_storages, run_features, sampler_state

        model = ctx["model"]
        seen: dict[str, Any] = {}
        real, real_forward = model.compute_logits, getattr(model, "forward", None)

        def compute_logits(*args: Any, **kwargs: Any) -> Any:
            seen["logits"] = out = real(*args, **kwargs)
            return out

        def forward(*args: Any, **kwargs: Any) -> Any:     # the hidden states (sample_tokens' prompt logprobs)
            assert real_forward is not None
            seen["hidden"] = out = real_forward(*args, **kwargs)
            return out

        own_forward = vars(model).get("forward")        # an instance attribute of its own, if any
        model.compute_logits = compute_logits
        if real_forward is not None:
            model.forward = forward
        try:
            res: dict[str, Any] = real_run_step(ctx, step)
        finally:
            del model.compute_logits
            if real_forward is not None:
                del model.forward
            if own_forward is not None:
                model.forward = own_forward
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        events = res["events"]
        n_forward = len(events)
        try:
            with feature_storages(ctx):     # after the forward: its storage ids stay the plain trace's
                if "sampler_state" not in ctx:
                    ctx["sampler_state"] = {**sampler_state(ctx["vllm_config"], mix), "vllm_config": ctx["vllm_config"]}
                st = ctx["sampler_state"]
                hidden = seen.get("hidden")
                hidden = hidden[0] if isinstance(hidden, tuple) else hidden
                contents, pointers = run_features(st, step, seen["logits"], features,
                                                  (hidden, real) if hidden is not None else None, ctx)
            info["runner"] = {"model_runner": "v2" if st["use_v2"] else "v1 (traced with v2's sampler)",
                              "fused_sampler": "flashinfer" if st["use_flashinfer"] else "none",
                              "contents": contents, **({"pointers": pointers} if pointers else {})}
        except Exception as e:  # noqa: BLE001 -- the forward stays; the trace says the features failed
            del events[n_forward:]
            info["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:400]
            info["traceback"] = traceback.format_exc(limit=-12)
        res["features"] = info
        res["features_s"] = round(time.perf_counter() - t0, 4)
        return res

    return run_step


def main() -> int:
    raw = sys.stdin.read()
    req = json.loads(raw)
    features = tuple(req.get("options", {}).get("features") or ())
    from vkc.modeltrace.mixes import DEFAULT_MIX

    mix = str(req.get("options", {}).get("sampling") or DEFAULT_MIX)
    if "sampler" in features or "spec" in features or "watermark" in features:
        # vLLM's H100 default for a top-k/top-p mix is FlashInfer's fused sampler (compiled, outside
        # the tree); its own switch takes the in-tree Triton path (the trace's notes say so)
        os.environ["VLLM_USE_FLASHINFER_SAMPLER"] = "0"
    from vkc.modeltrace import worker
    from vkc.modeltrace.engine_flags import install as install_flags

    install_flags(features)         # environment switches first: before vLLM is imported
    if "watermark" in features:
        from vkc.modeltrace.watermark import install as install_watermark

        install_watermark()
    if "thinking" in features:
        from vkc.modeltrace.thinking import install as install_thinking

        install_thinking(str(req.get("options", {}).get("reasoning_parser") or "qwen3"))
    if "spec" in features:
        from vkc.modeltrace.spec import install

        install(str(req.get("options", {}).get("speculative") or "ngram"), req.get("options", {}).get("draft_config"))

    worker.run_step = _with_features(worker.run_step, features, mix)  # type: ignore[assignment]
    from vkc.modeltrace import startup
    from vkc.modeltrace.runner_prepare import capture_kv_config

    startup.kv_cache = capture_kv_config(startup.kv_cache)     # the runner's block tables are built from it
    sys.stdin = io.StringIO(raw)
    return worker.main()


if __name__ == "__main__":
    sys.exit(main())
