"""Helpers the CUDA recipes share: the context they get, dtype tables, the recipe constructor.

A recipe module defines ``RECIPES = (cuda_recipe(...), ...)``: core :class:`Recipe` records
(``lang="cuda"``) whose ``plan`` is ``build(ctx: Ctx) -> Plan``.  The core registry
(``vkc.invoke.core.registry("cuda")``) discovers every module of this package except this one.
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.core.recipe import Recipe
from vkc.invoke.cuda.context import DECODE_MAX_BATCH, PREFILL_MAX_TOKENS, Ctx
from vkc.invoke.cuda.plan import Plan

__all__ = [
    "DECODE_MAX_BATCH", "FP8", "NATIVE_KV_TYPES", "NATIVE_TYPES", "PREFILL_MAX_TOKENS", "SIZEOF", "TORCH_TYPES",
    "Ctx", "Family", "Need", "Recipe", "cuda_recipe",
]

# dtype -> C++ type, per dispatch family (survey section 3: read them from the macro)
TORCH_TYPES = {"bfloat16": "c10::BFloat16", "float16": "c10::Half", "float32": "float"}
NATIVE_KV_TYPES = {"bfloat16": "__nv_bfloat16", "float16": "uint16_t", "float32": "float"}  # DISPATCH_BY_KV_CACHE_DTYPE
NATIVE_TYPES = {"bfloat16": "__nv_bfloat16", "float16": "half", "float32": "float"}
SIZEOF = {"c10::BFloat16": 2, "c10::Half": 2, "float": 4, "__nv_bfloat16": 2, "half": 2,
          "uint16_t": 2, "uint8_t": 1, "int8_t": 1, "c10::Float8_e4m3fn": 1, "int32_t": 4,
          "int64_t": 8}
FP8 = "c10::Float8_e4m3fn"       # VLLM_STABLE_DISPATCH_FP8_TYPES on CUDA

Build = Callable[[Ctx], Plan]


def cuda_recipe(kernels: tuple[str, ...], build: Build, family: Family, *,
                workloads: tuple[str, ...] = ("prefill", "decode"), default_workload: str = "prefill",
                needs: tuple[Need, ...] = (), template: str | None = None,
                helpers: tuple[str, ...] = ()) -> Recipe:
    """A CUDA :class:`Recipe`; CUDA wrappers default to prefill (their sizing is per token)."""
    return Recipe(lang="cuda", kernels=kernels, family=family, plan=build, workloads=workloads,
                  default_workload=default_workload, needs=needs, template=template, helpers=helpers)
