"""Model-trace worker with LoRA: ``python -m vkc.modeltrace.lora_worker`` (feature ``lora``).

The request and response are :mod:`vkc.modeltrace.serving_worker`'s; ``options["lora_rank"]`` is
the ``--max-lora-rank``.  Before the serving worker starts, :func:`vkc.modeltrace.lora.install`
sets up the engine config and the model load with LoRA; each step runs under vLLM's dummy-LoRA
warm-up (:func:`vkc.modeltrace.lora.lora_step`) around the plain step, then the sampling features
named with it (``sampler``, ``bitmask``, ``spec``) as the serving worker runs them; alone, ``lora``
samples nothing.  The step's ``features.runner`` gains ``lora`` (the adapters) and the LoRA index
buffers' contents.  A module of its own so the serving worker's source (in every featured trace's
cache key) stays as it is.
"""
from __future__ import annotations

import io
import json
import sys
import time
from typing import Any

from .features import FEATURES

__all__ = ["SAMPLING_FEATURES", "main"]

# the features the serving worker runs on the step's logits: every feature but ``lora`` itself
SAMPLING_FEATURES = tuple(f for f in FEATURES if f != "lora")


def _with_lora(real_run_step: Any) -> Any:
    def run_step(ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        from vkc.modeltrace.lora import lora_step, step_result

        with lora_step(ctx, step) as info:
            res: dict[str, Any] = real_run_step(ctx, step)
        res["lora"] = step_result(info)
        return res

    return run_step


def _lora_then(real_with_features: Any) -> Any:
    """The serving worker's ``_with_features`` with the step under LoRA (innermost: the forward's)."""
    def with_features(real_run_step: Any, features: tuple[str, ...], *args: Any, **kwargs: Any) -> Any:
        inner = _with_lora(real_run_step)
        outer = real_with_features(inner, features, *args, **kwargs) if set(features) & set(SAMPLING_FEATURES) \
            else None

        def run_step(ctx: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
            t0 = time.perf_counter()
            res: dict[str, Any] = outer(ctx, step) if outer is not None else inner(ctx, step)
            lora = res.pop("lora")
            info = res.setdefault("features", {})
            runner = info.setdefault("runner", {})
            runner["lora"] = lora["lora"]
            runner["contents"] = dict(sorted({**runner.get("contents", {}), **lora["contents"]}.items()))
            runner["pointers"] = lora["pointers"]
            res.setdefault("features_s", round(time.perf_counter() - t0 - float(res.get("forward_s", 0.0)), 4))
            return res

        return run_step

    return with_features


def main() -> int:
    raw = sys.stdin.read()
    req = json.loads(raw)
    from vkc.modeltrace import serving_worker
    from vkc.modeltrace.lora import install

    install(int(req["options"]["lora_rank"]))
    serving_worker._with_features = _lora_then(serving_worker._with_features)  # type: ignore[assignment]
    sys.stdin = io.StringIO(raw)
    return serving_worker.main()


if __name__ == "__main__":
    sys.exit(main())
