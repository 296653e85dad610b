"""``modeltraced_plan``: the launch plan of a kernel's launch in a traced model step.

Every launch of the kernel in the FULL step is grouped by what it launches (grid, constexprs,
warps/stages, every argument's dtype/shape/stride/offset/scalar value and which arguments share a
buffer); the first group is ``FULL`` (the first launch of the step, the example's default), the
others ``FULL.2``, ``FULL.3`` ... in launch order.  The SMALL step (the same model traced at a small
batch in the same process, run under ``TRITON_INTERPRET`` on CPU) gives ``SMALL``, ``SMALL.2`` ...
the same way.  One buffer per traced storage (``base``), sized ``base_nbytes`` (SMALL, and FULL
when it would not fit an H200: the KV cache cut to the blocks the step's sequences use, plus one), each tensor argument a view of it; contents from
:mod:`.inits`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vkc.invoke.traced_bytes import touched_bytes
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
    Value,
)
from vkc.modeltrace.contents import step_contents, step_pointers
from vkc.modeltrace.records import ModelTrace, ScalarArg, StepSpec, StepTrace, TensorArg, TracedEvent

from .initbase import is_int as _is_int
from .inits import Refused, StepFacts, init_for
from .writeonly import write_only_params

__all__ = ["ConfigRole", "ModelTracedPlan", "modeltraced_plan"]

_RANDOMISH = ("randn", "randn_scaled", "const", "rand", "uniform")


@dataclass(frozen=True)
class ConfigRole:
    """One named configuration of a model-traced example: where in the step it comes from."""

    name: str                  # "FULL", "FULL.2", "SMALL", ...
    step: str                  # StepSpec.id
    layers: tuple[int | None, ...]
    events: tuple[int, ...]
    role: str


@dataclass(frozen=True)
class ModelTracedPlan(TritonPlan):
    """A :class:`TritonPlan` with the further distinct launches of the step as named configurations."""

    extra: tuple[tuple[str, LaunchConfig], ...] = ()
    roles: tuple[ConfigRole, ...] = ()
    model_id: str = ""
    step_id: str = ""
    small_step_id: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def configs(self) -> tuple[tuple[str, LaunchConfig], ...]:
        return (("FULL", self.full), ("SMALL", self.small), *self.extra)

    def to_literal(self) -> dict[str, dict[str, Any]]:
        return {n: c.to_literal() for n, c in self.configs()}

    @property
    def layers(self) -> tuple[int | None, ...]:
        return self.roles[0].layers if self.roles else ()


# ----------------------------------------------------------------------------- grouping


def _value(v: Any) -> Any:
    return tuple(_value(x) for x in v) if isinstance(v, list) else (
        tuple(sorted((k, _value(x)) for k, x in v.items())) if isinstance(v, dict) else v)


def _key(ev: TracedEvent) -> tuple[Any, ...]:
    bases: dict[str, int] = {}
    args: list[Any] = []
    for n, a in ev.args:
        if isinstance(a, TensorArg):   # a layer's slice of a shared KV cache / weight: same launch
            off = None if a.producer.startswith(("kv_cache:", "weight:")) else a.offset
            args.append((n, a.dtype, a.shape, a.stride, off, bases.setdefault(a.base, len(bases))))
        elif isinstance(a, ScalarArg):
            args.append((n, _value(a.value)))
        else:
            args.append((n, "tuple", len(a)))
    return (ev.grid, _value(dict(ev.constexprs)), ev.num_warps, ev.num_stages, tuple(args))


def _groups(step: StepTrace, kernel: str) -> list[list[TracedEvent]]:
    out: dict[tuple[Any, ...], list[TracedEvent]] = {}
    for ev in step.events:
        if ev.kind == "triton" and ev.name == kernel:
            out.setdefault(_key(ev), []).append(ev)
    return list(out.values())


# ----------------------------------------------------------------------------- KV cache


def _block_dim(a: TensorArg) -> int:
    """The block dimension of a KV-cache view: the outermost (largest stride) of size > 2."""
    dims = sorted(range(len(a.shape)), key=lambda d: -a.stride[d])
    return next((d for d in dims if a.shape[d] > 2), dims[0] if dims else 0)


def kv_bases(step: StepTrace) -> frozenset[str]:
    """The storages of the step's KV caches: those the worker named as a cache (``origin``; the
    ``producer`` is the last writer, which after a cache kernel's write is that launch)."""
    return frozenset(a.base for ev in step.events for _p, a in ev.tensors()
                     if a.producer.startswith("kv_cache:") or a.origin.startswith("kv_cache:"))


def kv_blocks(step: StepTrace) -> int | None:
    """num_blocks of the step's KV cache (the block dimension of its views of 2+ dims: a flat 1-D view has
    no block dimension), None without one."""
    n: int | None = None
    kv = kv_bases(step)
    for ev in step.events:
        for _p, a in ev.tensors():
            if a.base in kv and len(a.shape) >= 2 and (a.producer.startswith("kv_cache:") or ev.kind == "triton"):
                b = a.shape[_block_dim(a)]
                n = b if n is None else min(n, b)
    return n


def _blocks_used(spec: StepSpec, block_size: int) -> int:
    tokens = spec.ctx if spec.workload == "decode" else spec.prompt_len
    return spec.batch * -(-tokens // block_size)


# ----------------------------------------------------------------------------- one config


def _extent(shape: Sequence[int], stride: Sequence[int], offset: int) -> int:
    if any(s == 0 for s in shape):
        return offset
    return offset + 1 + sum((s - 1) * abs(st) for s, st in zip(shape, stride))


def kv_block_bytes(step: StepTrace) -> dict[str, int]:
    """Bytes per block of each KV-cache storage: the block stride of its views of 2+ dims (the largest)."""
    out: dict[str, int] = {}
    kv = kv_bases(step)
    for ev in step.events:
        for _p, a in ev.tensors():
            if a.base in kv and len(a.shape) >= 2:
                out[a.base] = max(out.get(a.base, 0), a.stride[_block_dim(a)] * a.itemsize)
    return out


def _shrunk(a: TensorArg, num_blocks: int, block_bytes: int | None = None) -> TensorArg:
    """``a`` with its cache's block dimension cut to ``num_blocks``.  A flat 1-D view of the cache (UltraQuant's
    ``_kv_cache_flat``, vllm/v1/attention/ops/ultraquant/triton_store.py:40, addressed by the block/position strides
    its launch passes as scalars) keeps ``num_blocks`` blocks of ``block_bytes`` (the block stride of the storage's
    other views), and all of itself where the step has none."""
    shape = list(a.shape)
    if len(shape) == 1:
        if not block_bytes:
            return a
        shape[0] = min(shape[0], a.offset + num_blocks * block_bytes // a.itemsize)
        end = _extent(shape, a.stride, a.offset)
        return TensorArg(a.dtype, tuple(shape), a.stride, a.offset, a.itemsize, a.base, end * a.itemsize, a.producer,
                         a.origin)
    d = _block_dim(a)
    if block_bytes and a.stride[d] > 0:
        # the storage keeps num_blocks blocks of block_bytes; each view keeps the rows that fit in them (Step5's
        # ring, [rows, 512] bf16 over the same storage, holds ROWS_PER_BLOCK rows per block, not one)
        one = list(shape)
        one[d] = 1
        inner = _extent(one, a.stride, 0) * a.itemsize
        rows = (num_blocks * block_bytes - a.offset * a.itemsize - inner) // (a.stride[d] * a.itemsize) + 1
        shape[d] = min(shape[d], max(0, rows))
    else:
        shape[d] = min(shape[d], num_blocks)
    end = _extent(shape, a.stride, a.offset)
    return TensorArg(a.dtype, tuple(shape), a.stride, a.offset, a.itemsize, a.base, end * a.itemsize, a.producer, a.origin)


# vLLM's int8/int4 per-token-head KV caches keep each token-head's float scale beside its integer values
# (one storage, float views of it): the scales a cache write leaves there are absmax/qmax, positive and
# finite; this one keeps the dequantised values of the integer fill inside [-2, 2]
PACKED_SCALE = 0.015625


def _packed_kv(param_inits: list[tuple[str, TensorArg, InitSpec]]) -> InitSpec | None:
    """A KV-cache storage of integer values with float scale views: the integer fill, then each scale
    view set to :data:`PACKED_SCALE` (init kind ``overlay``); None when the views are not that."""
    ints = [(p, a, i) for p, a, i in param_inits if _is_int(a.dtype)]
    floats = [(p, a) for p, a, _i in param_inits if not _is_int(a.dtype)]
    if not ints or not floats or len({repr(i.to_literal()) for _p, _a, i in ints}) != 1:
        return None
    if not all("scale" in p.lower() for p, _a in floats):
        return None
    views: list[Value] = [[list(a.shape), list(a.stride), a.offset, a.dtype, PACKED_SCALE] for _p, a in floats]
    return InitSpec("overlay", (ints[0][2].to_literal(), views))


def _pick_init(param_inits: list[tuple[str, TensorArg, InitSpec]], kv: bool = False) -> InitSpec:
    # a view whose prior contents do not matter ("empty": the kernel only stores to it) takes the others'
    # (DeepSeek-V4's combined top-k indices, filled with -1, and the lens the kernel writes beside them)
    if any(i.kind != "empty" for _p, _a, i in param_inits):
        param_inits = [(p, a, i) for p, a, i in param_inits if i.kind != "empty"]
    specs = {repr(i.to_literal()): i for _p, _a, i in param_inits}
    if len(specs) == 1:
        return next(iter(specs.values()))
    packed = _packed_kv(param_inits) if kv else None
    if packed is not None:
        return packed
    floating = all(not _is_int(a.dtype) for _p, a, _i in param_inits)
    if kv and not floating and not all(_is_int(a.dtype) for _p, a, _i in param_inits):
        # one KV-cache storage holding float rows and raw-byte data (Step5's bf16 ring and its uint8 fp8
        # summaries): the float views' random values, whose bytes the integer views read -- as random as the
        # every-value fill of an integer cache
        floats = sorted({a.dtype for _p, a, _i in param_inits if not _is_int(a.dtype)})
        return InitSpec("randn_as", (floats[0],))
    if floating:   # an input and an output view of one buffer: the input's contents matter
        for _p, _a, i in param_inits:
            if i.kind in _RANDOMISH:
                return i
        return next(i for _p, _a, i in param_inits)
    names = ", ".join(f"{p}={i.kind}" for p, _a, i in param_inits)
    raise Refused(f"views of one index buffer need different contents ({names})")


def _tensor_params(ev: TracedEvent) -> list[str]:
    """The launch's tensor parameters: a scalar (a stride, a size) is no storage, so ``ptrs = out_ptr +
    row * stride_row`` still derives from ``out_ptr`` alone in the write-only analysis."""
    return [n for n, a in ev.args if isinstance(a, TensorArg)]


def _init_or_unread(param: str, a: TensorArg, ev: TracedEvent, facts: StepFacts) -> InitSpec:
    """:func:`init_for`, except that a buffer the kernel never loads at this launch (:mod:`.writeonly`: it only
    stores to it, or, with the launch's constexprs, does not touch it) whose producer has no contents rule is
    ``"empty"``: its prior contents cannot change the launch (the header says so)."""
    try:
        return init_for(param, a, ev, facts)
    except Refused as e:
        if facts.kernel_source is None:
            raise
        name, params = ev.name.split(":", 1)[-1], _tensor_params(ev)
        if param not in write_only_params(facts.kernel_source, name, params, ev.constexprs, unused=True):
            raise
        how = ("the kernel only stores to it (never loads it)" if param in write_only_params(
            facts.kernel_source, name, params, ev.constexprs) else "the kernel does not use it at this launch's constexprs")
        note = (f"{param}: {how}, so what vLLM's code left there "
                f"does not matter: allocated empty ({e.args[0] if e.args else 'no contents rule'})")
        if note not in facts.notes:
            facts.notes.append(note)
        return InitSpec("empty")


_TAGS = frozenset({"__float__", "__tl_dtype__", "__torch_dtype__"})   # the tagged values CONFIGS decodes


def _config(ev: TracedEvent, facts: StepFacts, trace: ModelTrace, cut: bool) -> LaunchConfig:
    names: dict[str, str] = {}
    views: dict[str, list[tuple[str, TensorArg]]] = {}
    args: list[Arg] = []
    for p, a in ev.args:
        if isinstance(a, tuple):
            raise Refused(f"{p}: a list/tuple argument ({len(a)} items) is not reproduced")
        if isinstance(a, ScalarArg):
            if isinstance(a.value, dict) and not set(a.value) <= _TAGS:
                raise Refused(f"{p}: a host object argument ({sorted(a.value)[:3]}) is not reproduced")
            args.append(Scalar(p, a.value))
            continue
        t = _shrunk(a, facts.num_blocks, facts.kv_block_bytes.get(a.base)) if cut and a.base in facts.kv_bases else a
        buf = names.setdefault(t.base, p)
        views.setdefault(t.base, []).append((p, t))
        args.append(TensorView(p, buf, t.shape, t.stride, t.offset, t.dtype))
    buffers: list[Buffer] = []
    for base, vs in views.items():
        first = vs[0][1]
        nbytes = max([first.base_nbytes] + [_extent(t.shape, t.stride, t.offset) * t.itemsize for _p, t in vs])
        init = _pick_init([(p, t, _init_or_unread(p, t, ev, facts)) for p, t in vs], kv=base in facts.kv_bases)
        buffers.append(Buffer(names[base], (-(-nbytes // first.itemsize),), first.dtype, init))
    live = sum(math.prod(b.shape) * next(t.itemsize for _p, t in views[k]) for k, b in
               zip(views, buffers))
    nbytes_moved, bytes_rule = touched_bytes(ev, [pt for vs in views.values() for pt in vs], facts.spec,
                                             num_blocks=facts.num_blocks, block_size=facts.block_size)
    opts = {k: v for k, v in sorted(dict(ev.extra.get("options") or {}).items())
            if k not in ("num_warps", "num_stages") and v is not None}
    spec = facts.spec
    shapes: dict[str, Any] = {"step": spec.id, "workload": spec.workload, "batch": spec.batch,
                              "num_tokens": facts.step.num_tokens, "layer": ev.layer, "event": ev.index}
    shapes["ctx" if spec.workload == "decode" else "prompt_len"] = spec.ctx or spec.prompt_len
    shapes["bytes_rule"] = bytes_rule           # what the GB/s figure counts (vkc.invoke.traced_bytes)
    return LaunchConfig(
        grid=tuple(ev.grid or (1,)), num_warps=int(ev.num_warps or TRITON_DEFAULT_WARPS),
        num_stages=int(ev.num_stages or TRITON_DEFAULT_STAGES), options=opts, constexprs=dict(ev.constexprs),
        buffers=tuple(sorted(buffers, key=lambda b: b.name)), args=tuple(args), live_bytes=int(live),
        flops=_flops(ev), bytes=nbytes_moved, shapes=shapes)


def _flops(ev: TracedEvent) -> float | None:
    s = {n: a.value for n, a in ev.args if isinstance(a, ScalarArg)}
    if all(isinstance(s.get(k), int) for k in ("num_valid_tokens", "N", "K")):
        return 2.0 * s["num_valid_tokens"] * s["N"] * s["K"]
    return None


def _role(evs: list[TracedEvent]) -> str:
    ev = evs[0]
    weights = sorted({a.producer.removeprefix("weight:").rsplit(".", 1)[-1] for _p, a in ev.tensors()
                      if a.producer.startswith("weight:")})
    layers = sorted({e.layer for e in evs if e.layer is not None})
    where = f"layer{'s' if len(layers) > 1 else ''} {','.join(map(str, layers)) or '-'}"
    return f"{where} ({ev.module or '?'})" + (f", reads {', '.join(weights)}" if weights else "")


def _info(ev: TracedEvent, step: StepTrace, kernel: str, params: Sequence[str] | None) -> LaunchInfo:
    x = ev.extra
    site = x.get("site")
    all_evs = [e for e in step.events if e.kind == "triton" and e.name == kernel]
    order = tuple(params) if params else tuple(n for n, _a in ev.args) + tuple(sorted(ev.constexprs))
    sig = x.get("signature")
    return LaunchInfo(
        params=order, site=Site(site["file"], int(site["line"]), site["function"]) if site else None,
        signature=dict(sig) if sig and all(p in sig for p in order) else None, attrs=dict(x.get("attrs") or {}),
        autotune=x.get("autotune"), heuristics=tuple(x.get("heuristics") or ()),
        constexpr_defaulted=tuple(x.get("constexpr_defaulted") or ()), count=len(all_evs),
        all_launches=tuple(f"{kernel.split(':')[-1]}{list(e.grid or ())} layer {e.layer} (event {e.index})"
                           for e in all_evs))


def _step_configs(trace: ModelTrace, step: StepTrace, kernel: str, small: bool, kernel_source: str | None = None
                  ) -> tuple[list[tuple[LaunchConfig, list[TracedEvent]]], StepFacts]:
    groups = _groups(step, kernel)
    if not groups:
        raise Refused(f"{kernel} is not launched in step {step.spec.id}")
    bs = trace.block_size
    used = _blocks_used(step.spec, bs) + 1
    traced_nb = kv_blocks(step) or 0
    # SMALL: the KV cache cut to the blocks the step's sequences use (+1).  FULL keeps the traced
    # cache (vLLM sizes it from the fake H100's memory) unless the launch would not fit an H200
    # (Qwen3-Next's traced cache is 276 GiB); then it is cut the same way, and the header says so.
    # A cache vkc cannot see keeps its size, and the block ids still stay below the blocks used.
    for cut in ((True,) if small else (False, True)):
        nb = (min(traced_nb, used) if cut else traced_nb) if traced_nb else used
        facts = StepFacts(step, nb, bs, small=small, kv_bases=kv_bases(step), kv_block_bytes=kv_block_bytes(step),
                          known=step_contents(trace, step.spec),
                          pointers=step_pointers(trace, step.spec), kernel_source=kernel_source)
        configs = _group_configs(groups, facts, trace, cut)
        if cut or max(c.live_bytes for c, _g in configs) <= FULL_LIVE_LIMIT:
            break
    if cut and not small and traced_nb > nb:
        facts.notes.append(f"FULL: the KV cache cut from the traced {traced_nb} blocks to the {nb} the step's "
                           f"sequences use (+1), so the launch fits {FULL_LIVE_LIMIT >> 30} GiB; the block table "
                           "and slots index inside it")
    return configs, facts


def _group_configs(groups: list[list[TracedEvent]], facts: StepFacts, trace: ModelTrace, cut: bool
                   ) -> list[tuple[LaunchConfig, list[TracedEvent]]]:
    """The configuration of each launch group; the first must build (else :class:`Refused`), a later one
    that cannot is left out and the header says why."""
    out = [(_config(groups[0][0], facts, trace, cut), groups[0])]
    for g in groups[1:]:
        try:
            out.append((_config(g[0], facts, trace, cut), g))
        except Refused as e:
            layers = ",".join(str(x.layer) for x in g if x.layer is not None) or "-"
            note = f"the launch of layer(s) {layers} (events {[x.index for x in g]}) left out: {e}"
            if note not in facts.notes:
                facts.notes.append(note)
    return out


FULL_LIVE_LIMIT = 100 << 30   # bytes a FULL launch may hold live (an H200 has 141 GB)


def modeltraced_plan(trace: ModelTrace, step: StepSpec, kernel_qualified: str, *, small_step: StepSpec | None = None,
                     params: Sequence[str] | None = None, reasons: list[str] | None = None,
                     kernel_source: str | None = None) -> ModelTracedPlan | None:
    """The plan of ``kernel_qualified``'s launches in ``step`` (SMALL from ``small_step``, default the
    same step); None when the step does not launch it or a launch cannot be reproduced with valid
    contents -- the reason is appended to ``reasons``."""
    try:
        full_step = trace.step(step)
        sm_step = trace.step(small_step or step)
        fulls, ffacts = _step_configs(trace, full_step, kernel_qualified, small=False, kernel_source=kernel_source)
        smalls, sfacts = _step_configs(trace, sm_step, kernel_qualified, small=True, kernel_source=kernel_source)
    except (Refused, KeyError) as e:
        if reasons is not None:
            reasons.append(str(e.args[0]) if e.args else type(e).__name__)
        return None
    extra: list[tuple[str, LaunchConfig]] = []
    roles: list[ConfigRole] = []
    for prefix, items, spec in (("FULL", fulls, full_step.spec), ("SMALL", smalls, sm_step.spec)):
        for i, (cfg, evs) in enumerate(items):
            name = prefix if i == 0 else f"{prefix}.{i + 1}"
            if i:
                extra.append((name, cfg))
            roles.append(ConfigRole(name, spec.id, tuple(e.layer for e in evs), tuple(e.index for e in evs),
                                    _role(evs)))
    first = fulls[0][1][0]
    return ModelTracedPlan(
        full=fulls[0][0], small=smalls[0][0], path="traced", launch=_info(first, full_step, kernel_qualified, params),
        versions=dict(trace.versions), extra=tuple(sorted(extra, key=lambda x: (x[0].split(".")[0], len(x[0]), x[0]))),
        roles=tuple(roles), model_id=trace.model_id, step_id=full_step.spec.id, small_step_id=sm_step.spec.id,
        notes=tuple(dict.fromkeys(ffacts.notes + sfacts.notes)))   # a note FULL and SMALL share, once
