"""``capture_plan``: the launch plan of a kernel's launch recorded inside a vLLM test.

The capture (:class:`vkc.testtrace.Capture`) holds the tracer's launch record -- grid, constexprs,
options, every argument described against its base storage -- and, per base storage, its dtype
and size and (integer storages up to 64 Ki elements) the contents the test made.  One buffer per
storage, each tensor argument a view of it (as the recipe and model-traced paths do); contents:

* integer / bool storages: the captured values, as a literal (``("values", [...])``, or
  ``zeros`` / ``("const", v)`` / ``("arange", a, d)`` where the values are that, or ``("runs", vals,
  counts)`` for a large storage of few runs: a KV cache the test zeroed, a padded table), so
  indices, lengths and offsets are the ones the test built;
* floating storages: ``randn`` (as in every traced example).

Refused (:class:`Refused`, the message says why): an integer storage too large to have been
captured, one that an earlier launch (recorded, not run) took as an argument it may write (its
contents may be that kernel's missing output; the worker's :mod:`vkc.testtrace.writes`), values that look like host addresses, a tensor not on the CPU, an
argument the tracer could only describe by ``repr``.  FULL and SMALL are the same launch: the test's
sizes are already ones the CPU interpreter runs.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from vkc.invoke.triton.plan import (
    TRITON_DEFAULT_STAGES,
    TRITON_DEFAULT_WARPS,
    Arg,
    Buffer,
    InitSpec,
    LaunchConfig,
    LaunchInfo,
    Scalar,
    Site,
    TensorView,
    TritonPlan,
)
from vkc.testtrace import Capture

__all__ = ["LITERAL_MAX", "Refused", "capture_plan"]

LITERAL_MAX = 1 << 16            # integer contents beyond this many elements are written out as runs
_ADDRESS = 2 ** 40


class Refused(Exception):
    """The captured launch cannot be reproduced with valid contents (the reason is the message)."""


def _compact(values: Sequence[int]) -> InitSpec:
    if not values or all(v == 0 for v in values):
        return InitSpec("zeros")
    if all(v == values[0] for v in values):
        return InitSpec("const", (values[0],))
    step = values[1] - values[0] if len(values) > 1 else 0
    if len(values) > 2 and all(b - a == step for a, b in itertools.pairwise(values)):
        return InitSpec("arange", (values[0], step))
    if len(values) > LITERAL_MAX:
        return _runs(*_encode(values))
    return InitSpec("values", (list(values),))


def _encode(values: Sequence[int]) -> tuple[list[int], list[int]]:
    vals: list[int] = []
    counts: list[int] = []
    for v in values:
        if vals and vals[-1] == v:
            counts[-1] += 1
        else:
            vals.append(v)
            counts.append(1)
    return vals, counts


def _runs(vals: Sequence[int], counts: Sequence[int]) -> InitSpec:
    """Run-length contents (``runs``) of a large storage, or its one value."""
    if len(vals) == 1:
        return InitSpec("zeros") if vals[0] == 0 else InitSpec("const", (vals[0],))
    if len(vals) > LITERAL_MAX:
        raise Refused(f"{sum(counts)} integer values in {len(vals)} runs (> {LITERAL_MAX}) are too many to write out")
    return InitSpec("runs", (list(vals), list(counts)))


def _init(name: str, b: dict[str, Any]) -> InitSpec:
    dt = str(b["dtype"])
    if b.get("device") != "cpu":
        raise Refused(f"buffer {name} is on {b.get('device')}, not the CPU; its contents were not captured")
    if not dt.startswith(("int", "uint", "bool")):
        return InitSpec("randn")
    values = b.get("values")
    runs: list[list[int]] = b.get("runs") or []
    if values is None and not runs:
        raise Refused(f"integer buffer {name} has {b['numel']} elements; its contents were not captured")
    if b.get("earlier"):
        raise Refused(f"integer buffer {name} was an argument of an earlier launch ({', '.join(b['earlier'])}) "
                      "that may write it and was recorded, not run; its contents may be that kernel's missing output")
    if dt == "int64" and any(abs(v) >= _ADDRESS for v in (values if values is not None else runs[0])):
        raise Refused(f"integer buffer {name} holds values like host addresses (a pointer table); not copied")
    if values is None:
        return _runs(runs[0], runs[1])
    return _compact(values)


def _arg(param: str, a: dict[str, Any]) -> Arg:
    if a["kind"] == "tensor":
        return TensorView(param, a["base"], tuple(a["shape"]), tuple(a["stride"]), int(a["offset"]), a["dtype"])
    v = a.get("value")
    if isinstance(v, dict) and "__repr__" in v:
        raise Refused(f"argument {param} is a {a.get('type', 'Python')} object ({v['__repr__'][:60]}), not a scalar")
    return Scalar(param, v)


def _config(cap: Capture) -> LaunchConfig:
    launch = dict(cap.launch or {})
    args = tuple(_arg(p, launch["args"][p]) for p in launch["params"] if launch["args"].get(p) is not None)
    used = {a.base for a in args if isinstance(a, TensorView)}
    for a in args:
        if isinstance(a, TensorView) and a.dtype.startswith(("int", "uint", "bool")) \
                and not str(cap.buffers[a.base]["dtype"]).startswith(("int", "uint", "bool")):
            raise Refused(f"integer argument {a.param} views a {cap.buffers[a.base]['dtype']} buffer; "
                          "its contents were not captured")
    buffers = tuple(Buffer(n, (int(b["numel"]),), str(b["dtype"]), _init(n, dict(b)))
                    for n, b in sorted(cap.buffers.items()) if n in used)
    opts = dict(launch.get("options") or {})
    num_warps = opts.pop("num_warps", None) or TRITON_DEFAULT_WARPS
    num_stages = opts.pop("num_stages", None) or TRITON_DEFAULT_STAGES
    live = sum(int(b["numel"]) * int(b["itemsize"]) for n, b in cap.buffers.items() if n in used)
    moved = sum(math.prod(a.shape) * int(cap.buffers[a.base]["itemsize"]) for a in args if isinstance(a, TensorView))
    shapes: dict[str, Any] = {"test": cap.test_id.split("[", 1)[0]}
    shapes.update({k: v for k, v in sorted(cap.params.items())})
    return LaunchConfig(
        grid=tuple(int(g) for g in launch["grid"]), num_warps=int(num_warps), num_stages=int(num_stages),
        options={k: v for k, v in sorted(opts.items()) if v is not None},
        constexprs={n: launch["constexprs"][n] for n in launch["constexpr_names"]},
        buffers=buffers, args=args, live_bytes=int(live), flops=None, bytes=float(moved), shapes=shapes)


def _info(cap: Capture, params: Sequence[str] | None) -> LaunchInfo:
    launch = dict(cap.launch or {})
    site = launch.get("site")
    order = tuple(launch["params"])
    sig = launch.get("signature")
    return LaunchInfo(
        params=tuple(params) if params and set(params) == set(order) else order,
        site=Site(site["file"], int(site["line"]), site["function"]) if site else None,
        signature=dict(sig) if sig and all(p in sig for p in order) else None, attrs=launch.get("attrs") or {},
        autotune=launch.get("autotune"), heuristics=tuple(launch.get("heuristics") or ()),
        constexpr_defaulted=tuple(launch.get("constexpr_defaulted") or ()), count=1,
        all_launches=(f"{launch['fn']['qualname']}{launch['grid']}",))


def capture_plan(cap: Capture, *, params: Sequence[str] | None = None) -> TritonPlan:
    """The plan of a captured launch (FULL = SMALL = the test's launch); raises :class:`Refused`."""
    if not cap.ok or not cap.launch:
        raise Refused(cap.reason or "nothing captured")
    try:
        cfg = _config(cap)
        info = _info(cap, params)
    except (KeyError, TypeError, ValueError) as e:
        raise Refused(f"the launch record is incomplete ({type(e).__name__}: {e})") from e
    return TritonPlan(full=cfg, small=cfg, path="traced", launch=info, versions=dict(cap.versions))
