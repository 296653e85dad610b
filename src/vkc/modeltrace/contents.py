"""Known contents of a featured step's buffers (parent side; no vLLM import).

The serving features record what the runner's host side wrote into their index and parameter
buffers (``notes["features"]["steps"][<step id>]["runner"]["contents"]``: storage id -> run-length
values over the whole storage, :func:`vkc.modeltrace.serving.host_contents`).  :func:`step_contents`
returns those and follows them through the step's small aten ops that vLLM runs on them before a
kernel reads them (``top_k.gpu[expanded_idx_mapping]``, ``input_ids[logits_indices]``,
``seq_lens.new_ones(...)``) and the one deterministic index kernel of the verification path
(``_gather_draft_sampled_kernel``), so every index-like argument of the sampler kernels has values:
the ones vLLM's own code gives it.  Outputs of the rejection kernels (accepted counts, sampled
tokens) depend on the logits and stay unknown.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .records import ModelTrace, ScalarArg, StepSpec, TensorArg, TracedEvent

__all__ = ["Contents", "PointerTarget", "step_contents", "step_pointers"]

_MAX_EXPAND = 1 << 20       # propagate through views of at most this many elements


@dataclass(frozen=True)
class Contents:
    """The values of one whole storage, run-length encoded: ``((value, count), ...)``."""

    runs: tuple[tuple[Any, int], ...]

    @property
    def numel(self) -> int:
        return sum(n for _v, n in self.runs)

    @property
    def const(self) -> Any | None:
        """The value when the storage holds one value throughout, else None."""
        return self.runs[0][0] if len(self.runs) == 1 else None

    def values(self) -> list[Any]:
        return [v for v, n in self.runs for _ in range(n)]

    @classmethod
    def of(cls, values: list[Any]) -> Contents:
        runs: list[list[Any]] = []
        for v in values:
            if runs and runs[-1][0] == v:
                runs[-1][1] += 1
            else:
                runs.append([v, 1])
        return cls(tuple((v, n) for v, n in runs))


def _view(c: Contents, t: TensorArg) -> list[Any] | None:
    """The elements a 1-D view reads (None when not 1-D or too large)."""
    if len(t.shape) != 1 or t.shape[0] > _MAX_EXPAND:
        return None
    flat = c.values()
    idx = [t.offset + i * t.stride[0] for i in range(t.shape[0])]
    return [flat[i] for i in idx] if all(0 <= i < len(flat) for i in idx) else None


def _whole(t: TensorArg, values: list[Any]) -> Contents | None:
    """Contents of ``t``'s storage when ``t`` is all of it (a fresh op result)."""
    n = t.base_nbytes // t.itemsize if t.itemsize else 0
    return Contents.of(values) if t.offset == 0 and n == len(values) else None


def _cast(dtype: str, v: Any) -> Any:
    if dtype.startswith(("int", "uint")):
        return int(v)
    if dtype == "bool":
        return bool(v)
    return float(v)


def _follow(ev: TracedEvent, known: Mapping[str, Contents]) -> Contents | None:
    """The result of one aten op over known inputs (gather by index, ones/zeros, scalar add/sub)."""
    if ev.kind != "aten" or len(ev.outputs) != 1:
        return None
    out = ev.outputs[0]
    base = ev.name.split("::")[-1]
    args = dict(ev.args)
    if base in ("new_ones", "new_zeros"):
        n = max(1, out.base_nbytes // out.itemsize)
        return Contents(((_cast(out.dtype, 1 if base == "new_ones" else 0), n),))
    src = args.get("self")
    if not isinstance(src, TensorArg) or src.base not in known:
        return None
    vals = _view(known[src.base], src)
    if vals is None:
        return None
    if base == "index":
        ix = args.get("indices")
        ix = ix[0] if isinstance(ix, tuple) and len(ix) == 1 else ix
        if not isinstance(ix, TensorArg) or ix.base not in known:
            return None
        pos = _view(known[ix.base], ix)
        if pos is None or not all(0 <= int(i) < len(vals) for i in pos):
            return None
        return _whole(out, [_cast(out.dtype, vals[int(i)]) for i in pos])
    other = args.get("other")
    if base in ("sub", "add") and isinstance(other, ScalarArg) and isinstance(other.value, (int, float)):
        sign = -1 if base == "sub" else 1
        return _whole(out, [_cast(out.dtype, v + sign * other.value) for v in vals])
    return None


def _gather_draft_sampled(ev: TracedEvent, known: Mapping[str, Contents]) -> dict[str, Contents]:
    """vLLM's ``_gather_draft_sampled_kernel`` (v1/worker/gpu/spec_decode/rejection_sampler.py): each
    logit row's input token and position; a draft row still inside the prefill becomes -1."""
    args = dict(ev.tensors())
    names = ("input_ids_ptr", "positions_ptr", "logits_indices_ptr", "expanded_idx_mapping_ptr",
             "expanded_local_pos_ptr", "prefill_len_ptr")
    if not all(n in args and args[n].base in known for n in names):
        return {}
    ids, positions, rows, req, local, prefill = (known[args[n].base].values() for n in names)
    n = args["logits_indices_ptr"].shape[0]
    off = {k: args[k].offset for k in names}
    tok, pos = [], []
    for i in range(n):
        t = int(rows[off["logits_indices_ptr"] + i])
        p = positions[off["positions_ptr"] + t]
        lp = local[off["expanded_local_pos_ptr"] + i]
        pl = prefill[off["prefill_len_ptr"] + int(req[off["expanded_idx_mapping_ptr"] + i])]
        tok.append(-1 if (lp > 0 and p - lp < pl) else int(ids[off["input_ids_ptr"] + t]))
        pos.append(int(p))
    out = {}
    for name, vals in (("draft_sampled_ptr", tok), ("pos_ptr", pos)):
        c = _whole(args[name], vals) if name in args else None
        if c is not None:
            out[args[name].base] = c
    return out


# vLLM kernels whose outputs are index data a later launch reads, with their semantics
_KERNEL_OUTPUTS = {"vllm.v1.worker.gpu.spec_decode.rejection_sampler:_gather_draft_sampled_kernel":
                   _gather_draft_sampled}


@dataclass(frozen=True)
class PointerTarget:
    """One entry of a device table of addresses vLLM's host built (the LoRA ops' weight-pointer
    tables): the allocation it points at (``storage``, the recorder's id, and where it came from),
    that storage's size, the tensor's dtype/shape and its element offset in the storage."""

    storage: str | None
    origin: str | None
    nbytes: int
    dtype: str
    shape: tuple[int, ...]
    offset: int


def step_pointers(trace: ModelTrace, spec: StepSpec) -> dict[str, tuple[PointerTarget, ...]]:
    """Storage id of a host-built address table -> what each entry points at, in ``spec``'s step
    (``runner["pointers"]``, :func:`vkc.modeltrace.lora.step_result`; {} without)."""
    note: Any = (trace.notes.get("features") or {}).get("steps", {}).get(spec.id, {})
    raw = (note.get("runner") or {}).get("pointers") or {}
    return {b: tuple(PointerTarget(e.get("storage"), e.get("origin"), int(e["nbytes"]), str(e["dtype"]),
                                   tuple(int(x) for x in e["shape"]), int(e["offset"])) for e in entries)
            for b, entries in sorted(raw.items())}


def _parse(raw: Mapping[str, Any]) -> dict[str, Contents]:
    return {b: Contents(tuple((v, int(n)) for v, n in d["runs"])) for b, d in sorted(raw.items())}


def step_contents(trace: ModelTrace, spec: StepSpec) -> dict[str, Contents]:
    """Storage id -> known contents in ``spec``'s step: what vLLM's host code copied into device buffers
    (``notes["host_contents"]``, every trace: :mod:`vkc.modeltrace.hostcopy`), then, over those, what a
    serving feature's runner wrote ({} when neither)."""
    known = _parse((trace.notes.get("host_contents") or {}).get(spec.id) or {})
    note: Any = (trace.notes.get("features") or {}).get("steps", {}).get(spec.id, {})
    featured = _parse((note.get("runner") or {}).get("contents") or {})
    if not featured:
        return known
    known.update(featured)
    # the host contents are the buffers as the runner left them for the kernels (the ops that wrote
    # them -- make_dummy's fills and cumsum -- ran before); the sampler's kernels write only logits
    # and their own outputs, never an index buffer another launch reads
    for ev in trace.step(spec).events:
        if (ev.module or "").startswith("sampler"):
            res = _follow(ev, known)
            if res is not None:
                known[ev.outputs[0].base] = res
            if ev.name in _KERNEL_OUTPUTS:
                known.update(_KERNEL_OUTPUTS[ev.name](ev, known))
    return known
