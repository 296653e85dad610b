"""cross_device_reduce_1stage / _2stage: vLLM's custom all-reduce, one process driving every GPU.

vLLM runs one process per GPU and exchanges the input buffers and the ``Signal`` meta
buffers through CUDA IPC handles (``allocate_shared_buffer_and_handle`` /
``open_mem_handle``), then ``CustomAllreduce::register_buffer`` stores the peers'
pointers in a device-side ``RankData``.  A CUDA IPC handle cannot be opened in the
process that created it, so the generated program (templates/allreduce.cu.j2) drives
all ranks from one host thread and gives each rank its peers' raw device pointers
after ``cudaDeviceEnablePeerAccess`` (same virtual address space, UVA): the kernel sees
the same ``RankData``/``RankSignals``/``Signal*`` arguments that vLLM builds.
"""
from __future__ import annotations

from typing import Any

from vkc.errors import InvocationError
from vkc.invoke.cuda.literals import comment_text, cpp_int
from vkc.invoke.cuda.plan import Plan, Scale, Stmt
from vkc.invoke.cuda.recipes.base import SIZEOF, Ctx, Family, cuda_recipe

AR = "csrc/custom_all_reduce.cuh"
ARCU = "csrc/custom_all_reduce.cu"
COMMON = "csrc/custom_collective_common.cuh"
PY = "vllm/distributed/device_communicators/custom_all_reduce.py"
NATIVE = {"bfloat16": "nv_bfloat16", "float16": "half", "float32": "float"}   # all_reduce() in ARCU
MAX_SIZE = 8192 * 1024         # CustomAllreduce(max_size=8192 * 1024)
BLOCK_LIMIT = 36               # defaultBlockLimit (CUDA)
THREADS = 512                  # allreduce(..., int threads = 512, ...)
WORLD_SIZES = (2, 4, 6, 8)     # REDUCE_CASE(2/4/6/8)
SMALL_TOKENS = 2
# REDUCE_CASE, default algorithm: 1-stage below these byte sizes when world_size > 2 (fully connected)
ONE_STAGE_BELOW = {2: MAX_SIZE, 4: 512 * 1024, 6: 256 * 1024, 8: 256 * 1024}
TEMPLATE = "vkc.invoke.cuda/allreduce.cu.j2"   # its own program: template_context below


def full_tokens(stage: int, world_size: int, hidden: int, elem: int) -> int:
    """Tokens of the FULL config: the largest all-reduce vLLM sends to this kernel by default."""
    limit = ONE_STAGE_BELOW[world_size] if stage == 1 else MAX_SIZE
    return max(1, (limit - 1) // (hidden * elem))


def _plan(c: Ctx, stage: int) -> Plan:
    t = NATIVE[c.dtype]
    es = SIZEOF[{"nv_bfloat16": "__nv_bfloat16"}.get(t, t)]
    name = f"cross_device_reduce_{stage}stage"
    hidden = c.dims.hidden
    if (hidden * es) % 16:
        raise InvocationError(f"{name}: hidden_size {hidden} x {es} bytes is not a multiple of 16",
                              hint="vLLM's should_custom_ar() sends such tensors to NCCL")
    tokens = {ws: full_tokens(stage, ws, hidden, es) for ws in WORLD_SIZES}
    ab = c.at(AR, "#define KL(ngpus, name)")
    fn = int(c.at(AR, "void allreduce(cudaStream_t stream, T* input, T* output, int size,").split(":")[1])
    consts = (
        Stmt(f"using T = {t};", f"dispatch: {c.at(ARCU, f'fa->allreduce<{t}>(')} all_reduce() case {c.dtype}"),
        c.const_int("hidden_size", hidden, "hidden_size (all-reduce of [num_tokens, hidden_size] activations)"),
        c.w(PY, "max_size=8192 * 1024,", "const long long max_size = 8192LL * 1024;",
            note="CustomAllreduce default; should_custom_ar() needs inp_size < max_size"),
        c.w(COMMON, "inline constexpr int defaultBlockLimit = 36;",
            "constexpr int block_limit = 36;", note="defaultBlockLimit (CUDA)"),
        c.w(AR, "int threads = 512,", "constexpr int threads = 512;", note="allreduce() default"),
    )
    launch = (
        c.w(AR, "auto d = packed_t<T>::P::size;", after=fn),
        c.w(AR, "size /= d;", after=fn),
        c.w(AR, "auto bytes = size * sizeof(typename packed_t<T>::P);"),
        c.w(AR, "int blocks = std::min(block_limit, (size + threads - 1) / threads);"),
    )
    if stage == 1:
        rule = ("largest num_tokens vLLM sends to the 1-stage kernel by default: bytes < max_size (8 MiB) "
                "at world size 2, bytes < 512 KiB at world size 4, < 256 KiB at 6 and 8 (REDUCE_CASE)")
    else:
        rule = ("largest num_tokens custom all-reduce takes (bytes < max_size = 8 MiB); at world size 4/6/8 "
                "(fully connected) vLLM picks the 2-stage kernel for it; at world size 2 only with "
                "VLLM_CUSTOM_ALLREDUCE_ALGO=2stage")
    table = ", ".join(f"ws{ws}={n}" for ws, n in tokens.items())
    return Plan(
        kernel_symbol=f"vllm::{name}", template_args=(t, "2" if stage == 1 else "4"), consts=consts,
        scale=Scale("num_tokens", f"hidden_size * {es}", small=SMALL_TOKENS,
                    note=f"num_tokens = {rule}; FULL: {table} tokens x {hidden} x {es} B per rank"),
        derived=(), buffers=(), launch_stmts=launch, grid="dim3(blocks)", block="dim3(threads)", smem="0",
        args=("ptrs", "sg", "self_sg", "output", "rank", "size"),
        dispatch=(f"CustomAllreduce::allreduce<{t}> -> switch (world_size_) REDUCE_CASE(2|4|6|8) -> "
                  f"KL(ngpus, {name}); the program instantiates ngpus = 2, 4, 6, 8 and picks the runtime "
                  f"world size (marker: the {'2' if stage == 1 else '4'}-GPU case"
                  + (", the smallest where the default algorithm picks 2-stage)" if stage == 2 else ")")),
        wrapper=f"{ab} (KL macro in CustomAllreduce::allreduce)",
        grid_expr="min(block_limit=36, (size/d + 511) / 512)", block_expr="512", smem_expr="0",
        min_gpus=2,
        notes=(
            ("multi-GPU: world size = VKC_WORLD_SIZE, else the largest of 2/4/6/8 <= visible GPUs (max 8); "
            "fewer than 2 GPUs: message on stderr, exit code 2, no launch"),
            ("one process, one host thread looping over the GPUs; vLLM uses one process per GPU and CUDA IPC "
            "handles (cudaIpcGetMemHandle/cudaIpcOpenMemHandle). IPC handles cannot be opened in their own "
            "process, so each rank gets its peers' raw device pointers after cudaDeviceEnablePeerAccess "
            "(UVA) and RankData/RankSignals are built exactly as CustomAllreduce::register_buffer / the "
            "constructor do"),
            ("buffers per rank: input (the registered buffer: vLLM copies inp into buffer_ptrs[rank] or uses "
            "a registered cuda-graph buffer), output, the meta buffer sizeof(vllm::Signal) + max_size zeroed "
            "(2-stage keeps its reduce-scatter partials after the Signal), one RankData"),
            ("GB/s is NCCL's bus bandwidth for all-reduce: 2*(n-1)/n * bytes / time, bytes = one rank's input; "
            "time_ms = slowest rank's mean per launch"),
            ("with symmetric memory enabled on sm_90 vLLM lowers max_size to 512 KiB (ws 6) / 256 KiB (ws 8); "
            "the program keeps the constructor default 8 MiB"),
        ),
    )


def one_stage(c: Ctx) -> Plan:
    return _plan(c, 1)


def two_stage(c: Ctx) -> Plan:
    return _plan(c, 2)


def template_context(plan: Plan) -> dict[str, Any]:
    """What templates/allreduce.cu.j2 needs beyond the common program context."""
    return {
        "kernel": plan.kernel_symbol, "stage": 2 if plan.kernel_symbol.endswith("2stage") else 1,
        "world_sizes": WORLD_SIZES, "small_tokens": cpp_int(plan.scale.small),
        "sizing_note": comment_text(plan.scale.note),
        "one_stage_below": {ws: cpp_int(v) for ws, v in ONE_STAGE_BELOW.items()},
    }


RECIPES = (
    cuda_recipe((f"{AR}:cross_device_reduce_1stage",), one_stage, workloads=("decode", "prefill"),
                default_workload="decode", family=Family.ALLREDUCE, template=TEMPLATE),
    cuda_recipe((f"{AR}:cross_device_reduce_2stage",), two_stage, workloads=("decode", "prefill"),
                default_workload="decode", family=Family.ALLREDUCE, template=TEMPLATE),
)
