"""Rewrite the recorded-trace fixtures of this folder from a model trace (not a test; run by hand).

    .venv/bin/python tests/invoke_cuda_modeltraced/make_fixtures.py MODEL OUT.json [--triton]

Keeps the FULL steps (decode 64 x 4096, prefill 4 x 2048) and, of their events, the custom-op calls
(and with ``--triton`` the Triton launches) of the first two and the last traced layer that call ops (and
events outside the layers).  Needs the vLLM trace worker (runs it, or reads its cache).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from vkc.invoke.triton.modeltraced.session import FULL_STEPS, model_trace_for
    from vkc.modelcfg import load_model
    from vkc.modeltrace.records import trace_to_json
    from vkc.source import resolve_source

    model_id, out = argv[0], Path(argv[1])
    kinds = {"op", "triton"} if "--triton" in argv else {"op"}
    data = trace_to_json(model_trace_for(resolve_source(), load_model(model_id, offline=True)))
    full = [{"batch": s.batch, "ctx": s.ctx, "prompt_len": s.prompt_len, "workload": s.workload}
            for s in FULL_STEPS.values()]
    steps = []
    for st in data["steps"]:
        spec = {k: st["spec"][k] for k in ("batch", "ctx", "prompt_len", "workload")}
        if spec not in full:
            continue
        traced = sorted({e["layer"] for e in st["events"] if e["kind"] == "op" and e["layer"] is not None})
        layers = sorted({*traced[:2], *traced[-1:]})     # first two and last (dense + MoE, sliding + full)
        keep = [e for e in st["events"] if e["kind"] in kinds and (e["layer"] is None or e["layer"] in layers)]
        steps.append({**st, "events": keep})
    data["steps"] = steps
    out.write_text(json.dumps(data, sort_keys=True, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{out}: {sum(len(s['events']) for s in steps)} events, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
