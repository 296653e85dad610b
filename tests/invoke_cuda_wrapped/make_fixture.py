"""Rewrite ``data/op_calls.json`` from the bundled models' traces (not a test; run by hand).

    .venv/bin/python tests/invoke_cuda_wrapped/make_fixture.py [gptq]

``gptq`` writes ``data/op_calls_gptq.json`` instead: the exllama GPTQ sources' ``_C::gptq_gemm`` calls
(:data:`GPTQ_MODELS`, reach sources of vkc.batch.reach).

For each model below keeps the decode steps (FULL 64 x 4096 and SMALL 2 x 64) and, of their events,
the first traced layer's calls of the listed ops plus the events that produced those calls' tensors
(the contents rules look a producer up), as ``{model_id: trace JSON}``.  Needs the vLLM trace worker
(runs it, or reads its cache).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "op_calls.json"
MODELS = {
    "meta-llama/Llama-3.1-8B-Instruct": ("_C::rms_norm", "_C::fused_add_rms_norm", "_C::silu_and_mul",
                                         "_C::rotary_embedding"),
    "openai/gpt-oss-20b": ("_moe_C::moe_align_block_size", "_moe_C::topk_softmax"),
    "Qwen/Qwen3-Next-80B-A3B-Instruct": ("_moe_C::moe_sum", "_moe_C::topk_softmax"),
}
GPTQ_OUT = OUT.with_name("op_calls_gptq.json")
GPTQ_MODELS = {f"composed:{s}:meta-llama/Llama-3.1-8B-Instruct@linear-backend=exllama,dtype=float16": ("_C::gptq_gemm",)
               for s in ("gptq", "gptq8")}
STEPS = ({"batch": 64, "ctx": 4096, "prompt_len": 0, "workload": "decode"},
         {"batch": 2, "ctx": 64, "prompt_len": 0, "workload": "decode"})


def _keep(events: list[dict], ops: tuple[str, ...]) -> list[dict]:
    first = min((e["layer"] for e in events if e["kind"] == "op" and e["name"] in ops and e["layer"] is not None),
                default=None)
    kept = {e["index"]: e for e in events if e["kind"] == "op" and e["name"] in ops and e["layer"] == first}
    by_index = {e["index"]: e for e in events}
    for e in list(kept.values()):
        for _n, a in e["args"]:
            for t in a if isinstance(a, list) else [a]:
                p = t.get("producer", "") if isinstance(t, dict) else ""
                if p.startswith("event:") and int(p[6:]) in by_index:
                    kept.setdefault(int(p[6:]), by_index[int(p[6:])])
    return [kept[i] for i in sorted(kept)]


def main(argv: list[str]) -> int:
    from vkc.invoke.triton.modeltraced.session import model_trace_for
    from vkc.modelcfg import load_model
    from vkc.modeltrace.records import trace_to_json
    from vkc.source import resolve_source

    out = {}
    models, dest = (GPTQ_MODELS, GPTQ_OUT) if argv[1:] == ["gptq"] else (MODELS, OUT)
    for model_id, ops in models.items():
        data = trace_to_json(model_trace_for(resolve_source(), load_model(model_id, offline=True)))
        steps = [{**st, "events": _keep(st["events"], ops)} for st in data["steps"]
                 if {k: st["spec"][k] for k in ("batch", "ctx", "prompt_len", "workload")} in STEPS]
        out[model_id] = {**data, "steps": steps, "notes": {}}
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"{dest}: {sum(len(s['events']) for t in out.values() for s in t['steps'])} events, "
          f"{dest.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
