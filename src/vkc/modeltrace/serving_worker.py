"""Model-trace worker with serving features: ``python -m vkc.modeltrace.serving_worker``.

The request and response are :mod:`vkc.modeltrace.worker`'s; ``options["features"]`` names the
features (``"sampler"``).  Each traced step runs as the plain worker runs it -- the model forward's
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


def _with_features(real_run_step: Any, features: tuple[str, ...]) -> Any:
    def run_step(ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        from vkc.modeltrace.serving import feature_storages, run_features, sampler_state

        model = ctx["model"]
        seen: dict[str, Any] = {}
        real = model.compute_logits

        def compute_logits(*args: Any, **kwargs: Any) -> Any:
            seen["logits"] = out = real(*args, **kwargs)
            return out

        model.compute_logits = compute_logits
        try:
            res: dict[str, Any] = real_run_step(ctx, step)
        finally:
            del model.compute_logits
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        events = res["events"]
        n_forward = len(events)
        try:
            with feature_storages(ctx):     # after the forward: its storage ids stay the plain trace's
                if "sampler_state" not in ctx:
                    ctx["sampler_state"] = {**sampler_state(ctx["vllm_config"]), "vllm_config": ctx["vllm_config"]}
                st = ctx["sampler_state"]
                contents = run_features(st, step, seen["logits"], features)
            info["runner"] = {"model_runner": "v2" if st["use_v2"] else "v1 (traced with v2's sampler)",
                              "fused_sampler": "flashinfer" if st["use_flashinfer"] else "none",
                              "contents": contents}
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
    if "sampler" in features or "spec" in features:
        # vLLM's H100 default for a top-k/top-p mix is FlashInfer's fused sampler (compiled, outside
        # the tree); its own switch takes the in-tree Triton path (the trace's notes say so)
        os.environ["VLLM_USE_FLASHINFER_SAMPLER"] = "0"
    from vkc.modeltrace import worker

    if "spec" in features:
        from vkc.modeltrace.spec import install

        install()

    worker.run_step = _with_features(worker.run_step, features)  # type: ignore[assignment]
    sys.stdin = io.StringIO(raw)
    return worker.main()


if __name__ == "__main__":
    sys.exit(main())
