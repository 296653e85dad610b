"""Analytic bytes and FLOPs per traced call and a roofline time estimate on an H100.

Bytes: every distinct tensor argument's viewed extent (read or written once), except the parts a
kernel touches only partly: KV cache views count the context tokens (attention) or the new tokens
(cache writes), an embedding table its gathered rows, a stacked expert weight the experts the
routed tokens can reach.  FLOPs: 2·M·N·K for GEMMs (aten mm/addmm/bmm, fused_moe, Marlin MoE),
4·q·kv·heads·head_dim for attention, otherwise one per output element.  Time per call:
``max(bytes / HBM bandwidth, flops / dense peak)`` (no launch overhead; an estimate only).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .records import StepSpec, TensorArg, TracedEvent

__all__ = ["GPU", "H100", "Cost", "event_cost"]


@dataclass(frozen=True)
class GPU:
    name: str
    hbm_bytes_s: float
    dense_flops_s: float       # bf16 dense tensor-core peak
    fp8_flops_s: float


H100 = GPU("H100 SXM", 3.35e12, 989e12, 1979e12)


@dataclass(frozen=True)
class Cost:
    bytes: int
    flops: int
    seconds: float


def _numel(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 1


def _extent(t: TensorArg) -> int:
    return _numel(t.shape) * t.itemsize


def _ctx_tokens(spec: StepSpec) -> int:
    return spec.batch * (spec.ctx if spec.workload == "decode" else spec.prompt_len)


def _scalar(ev: TracedEvent, name: str) -> int | None:
    """An int scalar argument or constexpr of the launch (``top_k`` is a constexpr of fused_moe_kernel)."""
    for n, a in ev.args:
        if n == name and not isinstance(a, (TensorArg, tuple)) and isinstance(getattr(a, "value", None), int):
            return int(a.value)
    v = ev.constexprs.get(name)
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else None


def _tensor_bytes(ev: TracedEvent, t: TensorArg, spec: StepSpec, tokens: int) -> int:
    if t.producer.startswith("kv_cache:") and len(t.shape) >= 3:
        per_token = _numel(t.shape[2:]) * t.itemsize if len(t.shape) == 4 else _numel(t.shape[1:]) * t.itemsize
        return per_token * (_ctx_tokens(spec) if "attention" in ev.name.split(":")[-1] else tokens)
    if t.producer == "metadata:block_table_tensor" and len(t.shape) == 2 and t.shape[0]:
        # a persistent row is as wide as the longest request; the kernel reads the context's blocks
        bs = ev.constexprs.get("BLOCK_SIZE")
        block = bs if isinstance(bs, int) and not isinstance(bs, bool) and bs > 0 else 16
        per_row = -(-max(_ctx_tokens(spec) // t.shape[0], 1) // block)
        return t.shape[0] * min(t.shape[1], per_row) * t.itemsize
    if (ev.name == "aten::embedding" or "rotary" in ev.name) and t.producer.startswith("weight:") and len(t.shape) == 2:
        return tokens * t.shape[-1] * t.itemsize
    if t.producer.startswith("weight:") and len(t.shape) == 3 and t.shape[0] > 1:
        experts = t.shape[0]
        act = dict(ev.tensors()).get("a_ptr")     # fused_moe: rows of A x top_k are the routed tokens
        routed = act.shape[0] * (_scalar(ev, "top_k") or 1) if act is not None else tokens * (_scalar(ev, "top_k") or 8)
        reached = experts * (1 - (1 - 1 / experts) ** routed)
        return int(_extent(t) * min(1.0, reached / experts))
    return _extent(t)


def _gemm_flops(ev: TracedEvent, spec: StepSpec) -> int | None:
    ts = [t for _n, t in ev.tensors()]
    base = ev.name.split("::")[-1]
    if ev.kind == "aten" and base == "linear":          # input [..., K], weight [N, K]
        mats = [t for t in ts if len(t.shape) >= 2][:2]
        if len(mats) == 2:
            return 2 * _numel(mats[0].shape[:-1]) * mats[0].shape[-1] * mats[1].shape[0]
    if ev.kind == "aten" and base in ("mm", "addmm", "bmm", "baddbmm", "_scaled_mm", "matmul"):
        mats = [t for t in ts if len(t.shape) >= 2][-2:]
        if len(mats) == 2:
            a, b = mats
            batch = _numel(a.shape[:-2])
            return 2 * batch * a.shape[-2] * a.shape[-1] * b.shape[-1]
    if ev.kind == "triton" and "fused_moe" in ev.name:
        named = dict(ev.tensors())
        act, wt = named.get("a_ptr"), named.get("b_ptr")
        if act is not None and wt is not None and len(wt.shape) == 3:
            m = act.shape[0] * (_scalar(ev, "top_k") or 1)
            return 2 * m * wt.shape[1] * wt.shape[2]
    if ev.kind == "op" and ("gemm" in base or base.endswith("_mm")) and ev.outputs:
        k = max((t.shape[-1] for t in ts if len(t.shape) == 2 and t.producer != "weight"), default=1)
        return 2 * _numel(ev.outputs[0].shape) * k
    return None


def _attention_flops(ev: TracedEvent, spec: StepSpec) -> int | None:
    if ev.kind != "triton" or "attention" not in ev.name.split(":")[-1]:
        return None
    q = dict(ev.tensors()).get("query_ptr")
    if q is None or len(q.shape) != 3:
        return None
    kv = spec.ctx if spec.workload == "decode" else spec.prompt_len / 2
    return int(4 * q.shape[0] * kv * q.shape[1] * q.shape[2])


def event_cost(ev: TracedEvent, spec: StepSpec, tokens: int, gpu: GPU = H100) -> Cost:
    seen: set[tuple[str, int, tuple[int, ...]]] = set()
    nbytes = 0
    for _n, t in list(ev.tensors()) + [("out", o) for o in ev.outputs]:
        key = (t.base, t.offset, t.shape)
        if key in seen:
            continue
        seen.add(key)
        nbytes += _tensor_bytes(ev, t, spec, tokens)
    if ev.kind == "collective":
        nbytes = int(ev.extra.get("bytes", nbytes))
    flops = _gemm_flops(ev, spec) or _attention_flops(ev, spec)
    if flops is None:
        flops = max((_numel(t.shape) for _n, t in ev.tensors()), default=0)
    fp8 = any(t.dtype.startswith("float8") for _n, t in ev.tensors())
    peak = gpu.fp8_flops_s if fp8 else gpu.dense_flops_s
    return Cost(int(nbytes), int(flops), max(nbytes / gpu.hbm_bytes_s, flops / peak))
