"""``vkc diff --model M [--workload W]``: what the model's step runs in each release, and how.

Both trees' model traces (:func:`vkc.modeltrace.trace_model`, vLLM's own model step on meta tensors,
cached) are compared per step (decode 64 x 4096, prefill 4 x 2048, or the one ``--workload``):

* which kernels the step runs: a kernel only the new release's step launches is ``added``, only the
  old one's ``removed`` (a changed backend choice shows here, which no source diff does);
  Triton kernels are identified across releases through the source diff's matching (a moved kernel
  keeps its identity), vLLM custom ops and external work by name;
* for a kernel both steps launch, the launch changes: calls per step, grid, constexprs,
  ``num_warps``/``num_stages`` and each argument's dtype and shape (``changed``), pairing the
  kernel's distinct launches in launch order;
* each Triton kernel's source class from the tree diff (changed / moved / unchanged).

Everything is sorted and free of timings, so the same traces give the same output.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vkc.diff.records import (
    ADDED,
    CHANGED,
    REMOVED,
    UNCHANGED,
    KernelChange,
    LaunchChange,
    ModelDiff,
    StepDiff,
)

__all__ = ["diff_model_traces", "launch_sigs", "step_kernels"]

_HIDDEN = {"vllm_op"}      # vLLM's Python-level op wrappers (their kernels are listed themselves)
MAX_FIELDS = 12            # field changes listed per kernel (the rest counted)


def _kind(ev: Any) -> str:
    if ev.kind == "triton":
        return "triton" if ev.name.startswith("vllm.") else "triton-external"
    return "cuda-op" if ev.kind == "op" else str(ev.kind)


def _arg(a: Any) -> str:
    if hasattr(a, "shape") and hasattr(a, "dtype"):
        return f"{a.dtype}{list(a.shape)}"
    if isinstance(a, tuple):
        return "(" + ", ".join(_arg(x) for x in a) + ")"
    return repr(getattr(a, "value", a))[:80]


def launch_sigs(ev: Any) -> dict[str, str]:
    """The comparable fields of one launch, as text."""
    sig = {f"arg {name}": _arg(a) for name, a in ev.args}
    if ev.grid is not None:
        sig["grid"] = str(tuple(ev.grid))
    for k, v in sorted(ev.constexprs.items()):
        sig[f"constexpr {k}"] = repr(v)
    if ev.num_warps is not None:
        sig["num_warps"] = str(ev.num_warps)
    if ev.num_stages is not None:
        sig["num_stages"] = str(ev.num_stages)
    return sig


def step_kernels(trace: Any, spec: Any) -> dict[str, dict[str, Any]]:
    """name -> {"kind", "calls" (per step, whole model), "launches": distinct launch signatures in
    launch order, each with its own calls}."""
    out: dict[str, dict[str, Any]] = {}
    for ev in trace.step(spec).events:
        if ev.kind in _HIDDEN:
            continue
        k = out.setdefault(ev.name, {"kind": _kind(ev), "calls": 0.0, "launches": []})
        w = trace.weight(ev)
        k["calls"] += w
        sig = launch_sigs(ev)
        for launch in k["launches"]:
            if launch["sig"] == sig:
                launch["calls"] += w
                break
        else:
            k["launches"].append({"sig": sig, "calls": w})
    return out


def _fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """What differs between the two kernels' launches (pairs in launch order)."""
    out = []
    if round(a["calls"], 3) != round(b["calls"], 3):
        out.append(f"calls/step {a['calls']:g} -> {b['calls']:g}")
    la, lb = a["launches"], b["launches"]
    if len(la) != len(lb):
        out.append(f"distinct launches {len(la)} -> {len(lb)}")
    for i, (x, y) in enumerate(zip(la, lb)):
        tag = f"launch {i + 1}: " if max(len(la), len(lb)) > 1 else ""
        sx, sy = x["sig"], y["sig"]
        for key in sorted(sx.keys() | sy.keys()):
            va, vb = sx.get(key, "(none)"), sy.get(key, "(none)")
            if va != vb:
                out.append(f"{tag}{key} {va} -> {vb}")
    return out


def _source_maps(changes: Iterable[KernelChange]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """old qualified -> new qualified, and each side's qualified -> source class."""
    a_to_b: dict[str, str] = {}
    cls_a: dict[str, str] = {}
    cls_b: dict[str, str] = {}
    for c in changes:
        if c.a is not None:
            cls_a[c.a.qualified] = c.kind
        if c.b is not None:
            cls_b[c.b.qualified] = c.kind
        if c.a is not None and c.b is not None:
            a_to_b[c.a.qualified] = c.b.qualified
    return a_to_b, cls_a, cls_b


def _step_diff(spec: Any, ka: dict[str, dict[str, Any]], kb: dict[str, dict[str, Any]],
               maps: tuple[dict[str, str], dict[str, str], dict[str, str]]) -> StepDiff:
    a_to_b, cls_a, cls_b = maps
    rows: list[LaunchChange] = []
    renamed = {a_to_b.get(n, n): n for n in ka}          # new name -> old name
    for new in sorted(set(renamed) | set(kb)):
        old = renamed.get(new)
        a, b = (ka[old] if old is not None else None), kb.get(new)
        src = cls_b.get(new) or (cls_a.get(old, "") if old is not None else "")
        if a is None:
            assert b is not None
            rows.append(LaunchChange(ADDED, b["kind"], None, new, src, 0.0, b["calls"], ()))
        elif b is None:
            rows.append(LaunchChange(REMOVED, a["kind"], old, None, src, a["calls"], 0.0, ()))
        else:
            fields = _fields(a, b)
            more = len(fields) - MAX_FIELDS
            shown = tuple(fields[:MAX_FIELDS]) + ((f"... {more} more",) if more > 0 else ())
            rows.append(LaunchChange(CHANGED if fields else UNCHANGED, b["kind"], old, new, src,
                                     a["calls"], b["calls"], shown))
    order = {ADDED: 0, REMOVED: 1, CHANGED: 2, UNCHANGED: 3}
    rows.sort(key=lambda r: (order[r.kind], r.kernel_kind, r.name))
    return StepDiff(spec.id, spec.workload, tuple(rows))


def diff_model_traces(trace_a: Any, trace_b: Any, specs: Iterable[Any], changes: Iterable[KernelChange],
                      model: str) -> ModelDiff:
    """Compare two :class:`~vkc.modeltrace.ModelTrace` of one model, per step of ``specs``."""
    maps = _source_maps(changes)
    steps = tuple(_step_diff(s, step_kernels(trace_a, s), step_kernels(trace_b, s), maps) for s in specs)
    return ModelDiff(
        model=model, options=f"tp={trace_b.options.tp} attention={trace_b.options.attention_backend} "
                             f"kv_cache={trace_b.options.kv_cache_dtype}",
        backends=(tuple(trace_a.backends), tuple(trace_b.backends)),
        checklist=(trace_a.fingerprint_status, trace_b.fingerprint_status),
        warnings=(tuple(trace_a.warnings), tuple(trace_b.warnings)),
        importable=(tuple(sorted(trace_a.importable.items())), tuple(sorted(trace_b.importable.items()))),
        steps=steps)
