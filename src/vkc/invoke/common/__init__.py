"""Shared by the Triton and CUDA invokers: the sizing policy and the provenance header.

Sizing policy (spec 3.2): the live set of an invocation example aims at ~20% of the
target GPU's free memory, clamped to [2 GiB, 8 GiB].  The target is the H100 profile
(:data:`H100_PROFILE`), so the FULL configuration's budget is 8 GiB; the generated
script re-checks the live set against ``torch.cuda.mem_get_info`` at run time.

Header: :func:`header_lines` renders ``(key, value)`` pairs as comment lines, one per
pair, values rendered with ``str`` (multi-line values are split, each line prefixed).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Sequence

from vkc.records import ModelConfig

GiB = 1 << 30

H100_PROFILE: dict[str, Any] = {
    "name": "NVIDIA H100 80GB HBM3",
    "major": 9, "minor": 0,
    "multi_processor_count": 132,
    "total_memory": 80 * GiB,
    "free_memory": 79 * GiB,                 # what mem_get_info reports on an idle card (approx.)
    "shared_memory_per_block": 49152,
    "shared_memory_per_block_optin": 232448,  # 227 KiB usable per block (228 KiB per SM)
    "shared_memory_per_multiprocessor": 233472,
    "L2_cache_size": 50 * 1024 * 1024,
    "warp_size": 32,
    "regs_per_multiprocessor": 65536,
    "max_threads_per_multi_processor": 2048,
}

BUDGET_FRACTION = 0.20
BUDGET_MIN = 2 * GiB
BUDGET_MAX = 8 * GiB


def budget_bytes(free_bytes: int | None = None) -> int:
    """Live-set target: 20% of ``free_bytes`` (default: the H100 profile), clamped to [2, 8] GiB."""
    free = H100_PROFILE["free_memory"] if free_bytes is None else int(free_bytes)
    return int(min(BUDGET_MAX, max(BUDGET_MIN, free * BUDGET_FRACTION)))


def model_dims(model: ModelConfig) -> dict[str, Any]:
    """The ModelConfig as a JSON-able dict (tuples -> lists), the form recipes receive."""
    def conv(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict) or hasattr(v, "items"):
            return {str(k): conv(x) for k, x in dict(v).items()}
        return v
    return {f.name: conv(getattr(model, f.name)) for f in dataclasses.fields(model)}


def resolved_dims(model: ModelConfig) -> dict[str, Any]:
    """The header's one-line summary of the model: H_q, H_kv, Dh, hidden, max_ctx, flags."""
    d: dict[str, Any] = {
        "H_q": model.num_attention_heads, "H_kv": model.num_key_value_heads,
        "Dh": model.head_dim, "hidden": model.hidden_size,
        "max_ctx": model.max_position_embeddings, "dtype": model.dtype,
    }
    if model.is_mla:
        d.update(kv_lora_rank=model.kv_lora_rank, qk_rope_head_dim=model.qk_rope_head_dim,
                 qk_nope_head_dim=model.qk_nope_head_dim, v_head_dim=model.v_head_dim)
    if model.num_experts:
        d.update(experts=model.num_experts, top_k=model.num_experts_per_tok,
                 moe_intermediate=model.moe_intermediate_size)
    flags = []
    if model.sliding_window:
        flags.append(f"sliding_window={model.sliding_window}")
    if model.attention_sinks:
        flags.append("sinks")
    if model.qk_norm:
        flags.append("qk_norm")
    if model.qkv_bias:
        flags.append("qkv_bias")
    if model.rope_scaling:
        rs = dict(model.rope_scaling)
        flags.append(f"rope_scaling={rs.get('rope_type') or rs.get('type')}")
    if model.is_mla:
        flags.append("mla")
    d["flags"] = ",".join(flags) or "none"
    return d


def format_dims(d: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


def header_lines(fields: Iterable[tuple[str, Any]], comment: str = "#") -> list[str]:
    """Comment lines ``<comment> key: value`` (lists: one indented line per item)."""
    out: list[str] = []
    for key, value in fields:
        if isinstance(value, (list, tuple)):
            out.append(f"{comment} {key}:")
            out.extend(f"{comment}   {_one_line(v)}" for v in value)
        else:
            lines = str(value).splitlines() or [""]
            out.append(f"{comment} {key}: {lines[0]}".rstrip())
            out.extend(f"{comment}   {ln}".rstrip() for ln in lines[1:])
    return out


def _one_line(v: Any) -> str:
    return " ".join(str(v).split())


__all__: Sequence[str] = (
    "GiB", "H100_PROFILE", "BUDGET_MIN", "BUDGET_MAX", "budget_bytes", "model_dims",
    "resolved_dims", "format_dims", "header_lines",
)
