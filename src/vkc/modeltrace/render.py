"""``vkc model kernels``: the kernel map of one traced step as rows, a rich table or JSON.

Rows come in launch order over the traced layers (``layer`` = the traced layer, ``calls`` = how many
times the whole model makes that call per step); a summary groups identical launches per kernel.
Tree kernels carry vkc's qualified names (Triton ``module:qualname``) or the vLLM custom op
(``_C::rms_norm``, CUDA in ``csrc/``); GEMMs behind aten are external (cuBLAS).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from .cost import H100, event_cost
from .features import features_of
from .records import ModelTrace, StepSpec, TensorArg, TracedEvent

__all__ = ["VLLM_H100_DEFAULT_ATTENTION", "Row", "header", "kernel_rows", "render_json", "render_table"]

VLLM_H100_DEFAULT_ATTENTION = "FLASH_ATTN"
_HIDDEN = {"vllm_op"}
_CONSTEXPR_SHOWN = 4


@dataclass(frozen=True)
class Row:
    index: int
    layer: int | None
    layer_type: str
    kind: str
    origin: str            # "tree" | "external"
    name: str
    calls: float           # per step, whole model
    launch: str
    bytes: int
    flops: int
    us: float              # per call, roofline estimate
    share: float           # of the step's estimated time


def _origin(ev: TracedEvent) -> tuple[str, str]:
    if ev.kind == "triton":
        return ("tree", "triton") if ev.name.startswith("vllm.") else ("external", "triton")
    if ev.kind == "op":
        return "tree", "cuda-op"
    if ev.kind == "collective":
        return "external", "collective"
    if ev.kind == "external":
        return "external", ev.name.split("::")[0]
    if ev.name.split("::")[-1] in ("mm", "addmm", "bmm", "baddbmm", "_scaled_mm", "linear"):
        return "external", "cublas"
    return "external", "torch"


def _shape(t: TensorArg) -> str:
    return "x".join(str(s) for s in t.shape) + f":{_short_dtype(t.dtype)}"


def _short_dtype(d: str) -> str:
    return {"bfloat16": "bf16", "float16": "f16", "float32": "f32", "int32": "i32", "int64": "i64",
            "float8_e4m3fn": "fp8", "uint8": "u8", "int8": "i8", "bool": "b"}.get(d, d)


def _varying(events: list[TracedEvent]) -> dict[str, list[str]]:
    """Per Triton kernel, the constexprs whose value differs between its launches in the step."""
    seen: dict[str, dict[str, set[str]]] = {}
    for e in events:
        if e.kind == "triton":
            d = seen.setdefault(e.name, {})
            for k, v in e.constexprs.items():
                d.setdefault(k, set()).add(json.dumps(v, sort_keys=True))
    return {n: sorted(k for k, vs in d.items() if len(vs) > 1) for n, d in seen.items()}


def _launch(ev: TracedEvent, varying: dict[str, list[str]]) -> str:
    if ev.kind == "triton":
        first = varying.get(ev.name, [])
        keys = first + [k for k in sorted(ev.constexprs) if k not in first]
        n = max(_CONSTEXPR_SHOWN, len(first))
        cx = ", ".join(f"{k}={ev.constexprs[k]}" for k in keys[:n])
        more = "" if len(ev.constexprs) <= n else ", ..."
        w = "-" if ev.num_warps is None else ev.num_warps
        st = "-" if ev.num_stages is None else ev.num_stages
        return f"grid={list(ev.grid or ())} warps={w} stages={st} {cx}{more}"
    if ev.kind == "collective":
        return f"world={ev.extra.get('world_size')} bytes={ev.extra.get('bytes')}"
    return " ".join(_shape(t) for _n, t in ev.tensors()[:4])


def kernel_rows(trace: ModelTrace, spec: StepSpec) -> list[Row]:
    step = trace.step(spec)
    evs = [e for e in step.events if e.kind not in _HIDDEN]
    costs = [event_cost(e, spec, step.num_tokens) for e in evs]
    weights = [trace.weight(e) for e in evs]
    total = sum(c.seconds * w for c, w in zip(costs, weights)) or 1.0
    varying = _varying(evs)
    rows = []
    for e, c, w in zip(evs, costs, weights):
        origin, kind = _origin(e)
        lt = trace.layer_types[e.layer] if e.layer is not None and e.layer < len(trace.layer_types) else "-"
        if e.layer is None and (e.module or "").startswith("sampler"):
            lt = str(e.module)            # a serving feature's call (vkc.modeltrace.features)
        rows.append(Row(e.index, e.layer, lt, kind, origin, e.name, w, _launch(e, varying), c.bytes, c.flops,
                        c.seconds * 1e6, c.seconds * w / total))
    return rows


def summary(rows: list[Row]) -> list[dict[str, Any]]:
    by: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        d = by.setdefault((r.name, r.launch), {"name": r.name, "kind": r.kind, "origin": r.origin,
                                              "launch": r.launch, "calls": 0.0, "share": 0.0, "us": r.us})
        d["calls"] += r.calls
        d["share"] += r.share
    return sorted(by.values(), key=lambda d: (-d["share"], d["name"], d["launch"]))


GDN_NOTE = ("GDN (linear attention) prefill: vLLM's default on an H100 is FlashInfer, compiled and "
            "external to the tree; traced with Triton/FLA")


def serving_notes(trace: ModelTrace) -> list[str]:
    """What of vLLM's serving choices the trace substituted or stood in for (said in every
    model-traced artifact as well as in the table's header)."""
    o = trace.options
    out = []
    if o.attention_backend.startswith("TRITON"):
        real = ("FLASHMLA / CUTLASS_MLA" if "MLA" in o.attention_backend
                else f"{VLLM_H100_DEFAULT_ATTENTION} (FlashAttention-3)")
        out.append(f"attention: vLLM's default on an H100 is {real}, compiled and external to the tree; "
                   f"traced with {o.attention_backend}")
    if any("GDN prefill kernel" in b for b in trace.backends):
        out.append(GDN_NOTE)
    if trace.block_size != 16:          # vLLM's default; another one is vLLM's start-up's choice, said
        how = (trace.notes.get("block_size") or {}).get("how") or "the trace's vLLM configuration"
        out.append(f"KV-cache block size {trace.block_size} tokens (not vLLM's default 16): {how}")
    ext = trace.notes.get("external_stand_ins") or []
    if ext:
        out.append(f"recorded, not reproduced (outside the tree): {', '.join(ext)}")
    # which packages were stood in: import-only ones, and recording ones (a variant's deep-gemm=recorded, ...)
    out += [w for w in trace.warnings if w.startswith(("not installed, imported as stand-ins",
                                                       "not installed, recording stand-ins"))]
    return out


def header(trace: ModelTrace, spec: StepSpec) -> dict[str, Any]:
    o = trace.options
    backend = o.attention_backend
    real = "FLASHMLA / CUTLASS_MLA" if "MLA" in backend else f"{VLLM_H100_DEFAULT_ATTENTION} (FlashAttention-3)"
    note = (f"vLLM's default on an H100 is {real}, compiled and external to the tree; traced with {backend}"
            if backend.startswith("TRITON") else "")
    if any("GDN prefill kernel" in b for b in trace.backends):
        note = "; ".join(x for x in (note, GDN_NOTE) if x)
    feats = features_of(trace)
    fnote: Any = trace.notes.get("features") or {}
    feature_note = "; ".join(str(fnote[k]) for k in ("sampler_note", "spec_note") if fnote.get(k)) if feats else ""
    extra = {"features": list(feats), "features_note": feature_note} if feats else {}
    return {"model": trace.model_id, "vllm_version": trace.vllm_version, "step": spec.id,
            "workload": spec.workload, "batch": spec.batch, "ctx": spec.ctx, "prompt_len": spec.prompt_len,
            "tp": o.tp, "attention_backend": backend, "attention_note": note, "kv_cache_dtype": o.kv_cache_dtype,
            "block_size": trace.block_size, "eager": bool(trace.vllm_config.get("enforce_eager", True)),
            "quantization": trace.vllm_config.get("quantization"), "dtype": trace.vllm_config.get("dtype"),
            "layers": f"{trace.traced_layers} of {trace.full_layers} traced",
            "layer_types": sorted(set(trace.layer_types)), "backends": list(trace.backends),
            "importable": dict(trace.importable), "checklist": trace.fingerprint_status,
            "warnings": list(trace.warnings), "gpu": H100.name, **extra}


def render_json(trace: ModelTrace, spec: StepSpec) -> str:
    rows = kernel_rows(trace, spec)
    doc = {"header": header(trace, spec), "rows": [r.__dict__ for r in rows], "kernels": summary(rows),
           "tree_kernels": sorted({r.name for r in rows if r.origin == "tree"})}
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def _fmt_bytes(n: int) -> str:
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n}B"


def render_table(trace: ModelTrace, spec: StepSpec, *, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    h = header(trace, spec)
    rows = kernel_rows(trace, spec)
    con = Console(width=width or 200, record=True, force_terminal=False, color_system=None, file=io.StringIO())
    first = (f"{h['model']}  {h['step']}  vLLM {h['vllm_version']}  tp={h['tp']}  attention={h['attention_backend']}"
             f"  kv_cache={h['kv_cache_dtype']}  eager={h['eager']}  quant={h['quantization']}  ({h['layers']})")
    lines = [first]
    if h["attention_note"]:
        lines.append(f"note: {h['attention_note']}")
    if h.get("features"):
        lines.append(f"serving features: {', '.join(h['features'])}")
        if h.get("features_note"):
            lines.append(f"note: {h['features_note']}")
    if h["block_size"] != 16:
        lines.append(f"KV-cache block size: {h['block_size']} tokens (vLLM's start-up's choice; its default is 16)")
    lines.append("backends: " + ("; ".join(h["backends"]) or "(none logged)"))
    lines.append("importable: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in sorted(h["importable"].items())))
    lines.append(f"checklist: {h['checklist']}")
    lines += [f"WARNING: {w}" for w in h["warnings"]]
    t = Table(title=f"kernels per step, estimated on an {h['gpu']} (roofline)", show_lines=False)
    for col in ("#", "layer", "kind", "kernel", "calls/step", "launch", "bytes", "GFLOP", "us/call", "share"):
        t.add_column(col, overflow="fold")
    for r in rows:
        t.add_row(str(r.index), (r.layer_type if r.layer_type.startswith("sampler") else "-") if r.layer is None
                  else f"{r.layer} {r.layer_type}", f"{r.kind}/{r.origin}",
                  r.name, f"{r.calls:g}", r.launch, _fmt_bytes(r.bytes), f"{r.flops / 1e9:.3f}", f"{r.us:.2f}",
                  f"{100 * r.share:.1f}%")
    con.print("\n".join(lines), highlight=False, markup=False)
    con.print(t)
    tree = sorted({r.name for r in rows if r.origin == "tree"})
    con.print(f"tree kernels reached: {len(tree)}", highlight=False, markup=False)
    return con.export_text()
