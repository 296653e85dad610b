"""Shared by the Triton and CUDA invokers: the sizing policy and the provenance header.

Sizing policy (spec 3.2): the live set of an invocation example aims at ~20% of the
target GPU's free memory, clamped to [2 GiB, 8 GiB].  The target is the H100 profile
(:data:`H100_PROFILE`), so the FULL configuration's budget is 8 GiB; the generated
script re-checks the live set against ``torch.cuda.mem_get_info`` at run time.

Header: :func:`vkc.invoke.core.header.header_lines` (re-exported here for old callers).
Dims: :mod:`vkc.invoke.core.dims` (the one normalisation).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vkc.invoke.core.dims import config_dict, config_summary
from vkc.invoke.core.header import header_lines
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
    return config_dict(model)


def resolved_dims(model: ModelConfig) -> dict[str, Any]:
    """The header's one-line summary of the model: H_q, H_kv, Dh, hidden, max_ctx, flags."""
    return config_summary(model)


def format_dims(d: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in d.items())


__all__: Sequence[str] = (
    "BUDGET_MAX",
    "BUDGET_MIN",
    "H100_PROFILE",
    "GiB",
    "budget_bytes",
    "format_dims",
    "header_lines",
    "model_dims",
    "resolved_dims",
)
