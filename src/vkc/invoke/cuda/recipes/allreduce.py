"""cross_device_reduce_1stage: multi-GPU (IPC buffers); the program only checks the device count."""
from __future__ import annotations

from vkc.invoke.cuda.recipes.base import Ctx, Recipe
from vkc.invoke.cuda.spec import Plan, Scale

AR = "csrc/custom_all_reduce.cuh"
NATIVE = {"bfloat16": "nv_bfloat16", "float16": "half", "float32": "float"}


def cross_device(c: Ctx) -> Plan:
    t = NATIVE[c.dtype]
    return Plan(
        kernel_symbol="vllm::cross_device_reduce_1stage", template_args=(t, "2"), consts=(),
        scale=Scale("vkc_units", "1", small=1, maximum="1"), derived=(), buffers=(), launch_stmts=(),
        grid="dim3(1)", block="dim3(512)", smem="0", args=(),
        dispatch=f"CustomAllreduce::allreduce<{t}> -> REDUCE_CASE(2) -> KL(2, cross_device_reduce_1stage)",
        wrapper=f"{c.at(AR, '#define KL(ngpus, name)')} (KL macro in CustomAllreduce::allreduce)",
        grid_expr="min(block_limit, (size + threads - 1) / threads)", block_expr="512", smem_expr="0",
        min_gpus=2,
        notes=("multi-GPU: needs IPC-registered buffers (RankData/Signal) on >= 2 GPUs; the program exits 2 "
               "(multi-GPU invocation is a separate issue)",),
    )


RECIPES = (Recipe((f"{AR}:cross_device_reduce_1stage",), cross_device, family="allreduce"),)
