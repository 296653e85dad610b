"""Model-trace cost of the serving features: one uncached trace per feature set, back to back.

    python bench/modeltrace_features.py [MODEL] [--features sampler bitmask,sampler sampler,spec]

Prints, per feature set, the wall time of ``trace_model`` (a fresh worker process, no cache), the
worker's own timings (process, engine config), each step's forward time and the features' time in
the step, and the Triton kernels the features launched in the decode step with their grids.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> int:
    from vkc.modelcfg import load_model
    from vkc.modeltrace import trace_model, with_features
    from vkc.modeltrace.records import StepSpec, TraceOptions
    from vkc.source import resolve_source

    ap = argparse.ArgumentParser()
    ap.add_argument("model", nargs="?", default="meta-llama/Llama-3.1-8B-Instruct")
    ap.add_argument("--features", nargs="*", default=["", "sampler", "bitmask,sampler", "sampler,spec"])
    a = ap.parse_args()
    tree = resolve_source(None, None)
    model = load_model(a.model)
    decode = StepSpec("decode", 64, ctx=4096)
    plain = TraceOptions((decode, StepSpec("prefill", 4, prompt_len=2048)))
    for feats in a.features:
        opts = with_features(plain, [f for f in feats.split(",") if f])
        t0 = time.perf_counter()
        trace = trace_model(tree, model, opts, use_cache=False)
        wall = time.perf_counter() - t0
        steps = (trace.notes.get("features") or {}).get("steps", {})
        per_step = ", ".join(f"{s.spec.id}: forward {s.forward_s:.3f}s features {steps.get(s.spec.id, {}).get('features_s', 0) or 0:.3f}s"
                             for s in trace.steps)
        print(f"[{feats or 'plain'}] wall {wall:.1f}s process {trace.timings.get('process_s')}s "
              f"engine_config {trace.timings.get('engine_config_s')}s; {per_step}")
        for e in trace.step(decode).events:
            if e.kind == "triton" and (e.module or "").startswith("sampler"):
                print(f"    {e.module:16s} {e.name}  grid={list(e.grid or ())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
