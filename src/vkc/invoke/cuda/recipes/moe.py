"""MoE routing/alignment: topkGating, moe_align_block_size_kernel, count_and_sort_expert_tokens_kernel,
moe_lora_align_block_size_kernel."""
from __future__ import annotations

from vkc.errors import NotApplicableError
from vkc.invoke.cuda.literals import cpp_int, cpp_str
from vkc.invoke.cuda.plan import (
    Buffer,
    Check,
    Plan,
    Scale,
    Stmt,
    const,
    host,
    randint,
    uniform,
    zero,
)
from vkc.invoke.cuda.recipes.base import SIZEOF, Ctx, Family, Need, cuda_recipe

TK = "csrc/moe/topk_softmax_kernels.cu"
AL = "csrc/moe/moe_align_sum_kernels.cu"
ROUTER_T = {"bfloat16": "__nv_bfloat16", "float16": "__half", "float32": "float"}
POW2 = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
MULT64 = (192, 320, 384, 448, 576)
MAX_LAUNCHES = 24        # 1 checked + 3 warm-up + 20 timed (count_and_sort mutates cumsum)


def _block_size_m(c: Ctx) -> int:
    """fused_moe BLOCK_SIZE_M (vLLM default configs: 16 for small M, 64 for large)."""
    return 16 if c.workload == "decode" else 64


def topk_gating(c: Ctx) -> Plan:
    d = c.dims
    E = d.num_experts
    assert E and d.topk
    in_t = ROUTER_T[c.dtype]
    es = SIZEOF.get(in_t, 2)
    if E in POW2:
        max_bytes, why = 16, "BYTES_PER_LDG_POWER_OF_2 = 16"
    elif E in MULT64:
        max_bytes = 4 if es == 2 else 8
        why = f"BYTES_PER_LDG_MULTIPLE_64 = {max_bytes}"
    else:
        raise NotApplicableError(
            f"topkGating is not launched for {d.model_id}: num_experts={E} takes the moeSoftmax + moeTopK path",
            hint="use a model with 1..512 (power of two) or 192/320/384/448/576 experts, e.g. Qwen/Qwen3-30B-A3B")
    bpl = min(max_bytes, es * E)
    elts = bpl // es
    vecs = max(1, E // (elts * 32))
    vpt = vecs * elts
    tpr = E // vpt
    rpw = 32 // tpr
    targs = (str(vpt), str(E), "4", str(bpl), "32", "int", in_t, "vllm::moe::SCORING_SOFTMAX")
    consts = [
        c.const_int("num_experts", E, "num_experts", src=(TK, "const int num_experts = gating_output.size(-1);")),
        c.const_int("topk", d.topk, "num_experts_per_tok", src=(TK, "const int topk = topk_weights.size(-1);")),
        Stmt("static constexpr int WARPS_PER_TB = 4;", c.at(TK, "static constexpr int WARPS_PER_TB = 4;")),
        Stmt("constexpr int WARP_SIZE_PARAM = WARP_SIZE;", "vkc: LAUNCH_TOPK passes WARP_SIZE (32)"),
        Stmt(f"static constexpr int ROWS_PER_WARP = {rpw};",
             "vkc: detail::TopkConstants<...>::ROWS_PER_WARP = WARP_SIZE / (EXPERTS / VPT)",
             f"BYTES_PER_LDG = MIN({max_bytes}, sizeof(InputType) * EXPERTS) = {bpl}; VPT = {vpt}"),
        Stmt("const bool renormalize = true;", "vkc: norm_topk_prob / vLLM renormalize for top-k > 1"),
    ]
    derived = [Stmt("const int num_rows = (int)num_tokens_ll;", "vkc: one router row per token")]
    launch = [
        c.w(TK, "const int num_warps = (num_rows + ROWS_PER_WARP - 1) / ROWS_PER_WARP;"),
        c.w(TK, "const int num_blocks = (num_warps + WARPS_PER_TB - 1) / WARPS_PER_TB;"),
        c.w(TK, "dim3 block_dim(WARP_SIZE_PARAM, WARPS_PER_TB);"),
    ]
    return Plan(
        kernel_symbol="vllm::moe::topkGating", template_args=targs, consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"(size_t)num_experts * {es} + (size_t)topk * 12", small=8,
                    maximum=c.tokens_max(), note="router logits [T, E] + weights/ids/source rows [T, k]"),
        derived=tuple(derived),
        buffers=(
            Buffer("gating_output", in_t, "(size_t)num_rows * num_experts", uniform(-4.0, 4.0), "in", "[T, E]"),
            Buffer("topk_weights", "float", "(size_t)num_rows * topk", zero(), "out", "[T, k]"),
            Buffer("topk_indices", "int", "(size_t)num_rows * topk", zero(), "out", "[T, k]"),
            Buffer("token_expert_indices", "int", "(size_t)num_rows * topk", zero(), "out", "[T, k]"),
        ),
        launch_stmts=tuple(launch), grid="dim3(num_blocks)", block="block_dim", smem="0",
        args=("gating_output", "nullptr", "topk_weights", "num_rows", "topk_indices", "token_expert_indices",
              "topk", "0", "num_experts", "renormalize", "nullptr", "1.0", "nullptr"),
        dispatch=(f"topk_softmax: gating {c.dtype} -> {in_t}, topk_indices int32 -> IndType=int, SCORING_SOFTMAX; "
                  f"topkGatingKernelLauncher case {E}: LAUNCH_TOPK({E}, 4, {why})"),
        wrapper=(f"{c.at(TK, 'void topkGatingLauncherHelper(')} (topkGatingLauncherHelper, "
                 f"from topk_softmax at {c.at(TK, 'void topk_softmax(')})"),
        grid_expr="num_blocks = ceil(ceil(num_rows / ROWS_PER_WARP) / WARPS_PER_TB)",
        block_expr="dim3(WARP_SIZE, WARPS_PER_TB)", smem_expr="0",
        notes=(("vLLM launches with cudaLaunchKernelEx + programmatic stream serialization (PDL); the plain "
               "<<<>>> launch here has the same grid/block/arguments"),),
    )


def _align_common(c: Ctx) -> tuple[list[Stmt], list[Stmt]]:
    d = c.dims
    assert d.num_experts and d.topk
    consts = [
        c.const_int("num_experts", d.num_experts, "num_experts", ctype="int64_t"),
        c.const_int("topk_num", d.topk, "num_experts_per_tok", ctype="int32_t"),
        c.const_int("block_size", _block_size_m(c), f"fused_moe BLOCK_SIZE_M for {c.workload}", ctype="int64_t"),
        Stmt("using scalar_t = int32_t;", "dispatch: INTEGRAL(_AND_UNSIGNED)_TYPES(topk_ids int32, as fused_moe makes it)"),
        c.w(AL, "int64_t padded_num_experts = ((num_experts + WARP_SIZE - 1) / WARP_SIZE) * WARP_SIZE;"),
    ]
    derived = [
        Stmt("const int64_t num_tokens = num_tokens_ll;", "vkc: tokens routed"),
        Stmt("const size_t numel = (size_t)num_tokens * topk_num;", "vkc: topk_ids.numel()"),
        Stmt("const int32_t max_num_tokens_padded = (int32_t)(numel + num_experts * (block_size - 1));",
             "vLLM moe_align_block_size(): sorted_ids size = numel + E * (block_size - 1)"),
    ]
    return consts, derived


def _small_tokens(c: Ctx) -> int:
    # stay on the non-small-batch path (numel >= 1024) even under SMALL_SANITY
    return -(-1024 // (c.dims.topk or 1))


def moe_align(c: Ctx) -> Plan:
    consts, derived = _align_common(c)
    consts += [c.w(AL, "int experts_per_warp = WARP_SIZE;", after=_line(c, "void moe_align_block_size(")),
               c.w(AL, "int threads = 1024;", after=_line(c, "void moe_align_block_size("))]
    launch = [
        c.w(AL, "threads = ((threads + WARP_SIZE - 1) / WARP_SIZE) * WARP_SIZE;", "const int threads_r = ((threads + WARP_SIZE - 1) / WARP_SIZE) * WARP_SIZE;"),
        c.w(AL, "bool small_batch_expert_mode = (topk_ids.numel() < 1024) && (num_experts <= 64);",
            "const bool small_batch_expert_mode = (numel < 1024) && (num_experts <= 64);"),
        c.w(AL, "size_t num_warps = CEILDIV(padded_num_experts, experts_per_warp);",
            after=_line(c, "void moe_align_block_size(")),
        c.w(AL, "size_t shared_mem_size = num_warps * experts_per_warp * sizeof(int32_t);",
            after=_line(c, "void moe_align_block_size(")),
    ]
    return Plan(
        kernel_symbol="vllm::moe::moe_align_block_size_kernel", template_args=("int32_t",),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", "(size_t)topk_num * 4 * 3", small=_small_tokens(c), maximum=c.tokens_max(),
                    note="topk_ids [T, k] + sorted_token_ids (~T*k) int32"),
        derived=tuple(derived),
        buffers=(
            Buffer("topk_ids", "int32_t", "numel", randint(0, "num_experts"), "in", "[T, k] expert ids < E"),
            Buffer("sorted_token_ids", "int32_t", "max_num_tokens_padded", zero(), "out", "[max_num_tokens_padded]"),
            Buffer("experts_ids", "int32_t", "CEILDIV(max_num_tokens_padded, block_size)", zero(), "out",
                   "[ceil(max_num_tokens_padded / block_size)]"),
            Buffer("num_tokens_post_pad", "int32_t", "1", zero(), "out", "[1]"),
            Buffer("expert_map", "int32_t", "1", zero(), "ws", "[0] (no expert map)"),
            Buffer("cumsum_buffer", "int32_t", "num_experts + 1", zero(), "ws", "[E + 1]"),
        ),
        launch_stmts=tuple(launch), grid="dim3(2)", block="dim3(threads_r)", smem="shared_mem_size",
        checks=(Check("!small_batch_expert_mode", cpp_str("non-small-batch path: moe_align_block_size_kernel")),),
        args=("topk_ids", "sorted_token_ids", "experts_ids", "num_tokens_post_pad", "expert_map",
              "(int32_t)num_experts", "(int32_t)padded_num_experts", "experts_per_warp", "(int32_t)block_size",
              "numel", "cumsum_buffer", "max_num_tokens_padded", "topk_num", "false"),
        dispatch="VLLM_STABLE_DISPATCH_INTEGRAL_AND_UNSIGNED_TYPES(int32 topk_ids); non-small-batch path",
        wrapper=f"{c.at(AL, 'void moe_align_block_size(')} (moe_align_block_size)",
        grid_expr="2 (block 0 counts/aligns, block 1 fills sorted_token_ids)", block_expr="threads = 1024",
        smem_expr="CEILDIV(padded_num_experts, WARP_SIZE) * WARP_SIZE * sizeof(int32_t)",
        notes=(("SMALL_SANITY keeps topk_ids.numel() >= 1024 so the wrapper's non-small-batch path (this kernel) "
               "is the one vLLM would take"),),
    )


_TOPK_HOST = """for (size_t i = 0; i < n; ++i) h[i] = (int32_t)rng.randint(0, num_experts);"""
_CUMSUM_HOST = """std::vector<long long> counts(num_experts, 0);
for (size_t i = 0; i < numel; ++i) counts[h_topk_ids[i]]++;
h[0] = 0;
for (int64_t e = 0; e < num_experts; ++e) h[e + 1] = h[e] + (int32_t)CEILDIV(counts[e], block_size) * (int32_t)block_size;"""


def count_and_sort(c: Ctx) -> Plan:
    consts, derived = _align_common(c)
    consts = [s for s in consts if "padded_num_experts" not in s.code]   # not used by this stage
    after = _line(c, "void moe_align_block_size(")
    launch = [
        c.w(AL, "int threads = 1024;", after=after),
        c.w(AL, "const int block_threads = std::min(256, (int)threads);", after=after),
        c.w(AL, "const int num_blocks = (topk_ids.numel() + block_threads - 1) / block_threads;",
            "const int num_blocks = (numel + block_threads - 1) / block_threads;"),
        c.w(AL, "const int max_blocks = 65535;", after=after),
        c.w(AL, "const int actual_blocks = std::min(num_blocks, max_blocks);", after=after),
        c.w(AL, "dim3 gridDims(1, actual_blocks);"),
    ]
    return Plan(
        kernel_symbol="vllm::moe::count_and_sort_expert_tokens_kernel", template_args=("int32_t",),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"(size_t)topk_num * 4 * ({MAX_LAUNCHES} + 2)", small=_small_tokens(c),
                    maximum=c.tokens_max(), note="topk_ids + sorted_token_ids (oversized, see notes)"),
        derived=tuple(derived) + (Stmt(f"const size_t sorted_capacity = max_num_tokens_padded + {MAX_LAUNCHES} * numel;",
                                       "vkc: cumsum advances by numel per launch; room for every launch"),),
        buffers=(
            Buffer("topk_ids", "int32_t", "numel", host(_TOPK_HOST), "in", "[T, k] expert ids < E"),
            Buffer("sorted_token_ids", "int32_t", "sorted_capacity", zero(), "ws", "[max_num_tokens_padded + slack]"),
            Buffer("cumsum_buffer", "int32_t", "num_experts + 1", host(_CUMSUM_HOST), "inout",
                   "[E + 1] padded expert offsets, as moe_align_block_size_kernel leaves them"),
            Buffer("expert_map", "int32_t", "1", zero(), "ws", "[0] (no expert map)"),
        ),
        launch_stmts=tuple(launch), grid="gridDims", block="dim3(block_threads)", smem="0",
        args=("topk_ids", "sorted_token_ids", "cumsum_buffer", "expert_map", "numel", "(int32_t)num_experts",
              "max_num_tokens_padded", "topk_num", "false", "nullptr"),
        bytes_moved="2.0 * numel * 4",
        dispatch="VLLM_STABLE_DISPATCH_INTEGRAL_AND_UNSIGNED_TYPES(int32 topk_ids); second stage of moe_align_block_size",
        wrapper=f"{c.at(AL, 'void moe_align_block_size(')} (moe_align_block_size, sort_kernel)",
        grid_expr="dim3(1, min(ceil(numel / 256), 65535))", block_expr="min(256, threads)", smem_expr="0",
        notes=(("cumsum_buffer holds the padded per-expert offsets computed on the host from topk_ids (what "
               "moe_align_block_size_kernel produces); the kernel atomically advances it, so sorted_token_ids "
               "has room for every timed launch"),),
    )


def moe_lora_align(c: Ctx) -> Plan:
    consts, derived = _align_common(c)
    consts += [c.const_int("max_loras", 4, "vkc choice: 4 LoRA slots", ctype="int64_t")]
    after = _line(c, "void moe_lora_align_block_size(")
    derived += [
        Stmt("const int max_num_m_blocks = (int)CEILDIV(max_num_tokens_padded, block_size);", "vkc: per LoRA slot"),
    ]
    launch = [
        c.w(AL, "int num_thread = 1024;", after=after),
        c.w(AL, "dim3 blockDim(num_thread);", after=after),
        c.w(AL, "size_t num_warps = CEILDIV(padded_num_experts, WARP_SIZE);", after=after),
        c.w(AL, "size_t shared_mem_size = num_warps * WARP_SIZE * sizeof(int32_t);", after=after),
    ]
    lora_ids = """h[0] = -1;  // base-model tokens (sorted unique active ids start with -1)
for (size_t i = 1; i < n; ++i) h[i] = (int32_t)(i - 1);"""
    return Plan(
        kernel_symbol="vllm::moe::moe_lora_align_block_size_kernel", template_args=("int32_t",),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", "(size_t)topk_num * 4 * (1 + 4) + 8", small=_small_tokens(c),
                    maximum=c.tokens_max(), note="topk_ids + per-LoRA sorted_token_ids"),
        derived=tuple(derived),
        buffers=(
            Buffer("topk_ids", "int32_t", "numel", randint(0, "num_experts"), "in", "[T, k] expert ids < E"),
            Buffer("token_lora_mapping", "int32_t", "num_tokens", randint(0, "max_loras"), "in", "[T] LoRA slot per token"),
            Buffer("expert_map", "int32_t", "1", zero(), "ws", "[0] (no expert map)"),
            Buffer("sorted_token_ids", "int32_t", "(size_t)max_loras * max_num_tokens_padded", zero(), "out",
                   "[max_loras, max_num_tokens_padded]"),
            Buffer("expert_ids", "int32_t", "(size_t)max_loras * max_num_m_blocks", zero(), "out",
                   "[max_loras, max_num_m_blocks]"),
            Buffer("num_tokens_post_pad", "int32_t", "max_loras", zero(), "out", "[max_loras]"),
            Buffer("adapter_enabled", "int32_t", "max_loras + 1", const(1.0), "in", "[max_loras + 1] all enabled"),
            Buffer("cumsum", "int32_t", "max_loras * (num_experts + 1)", zero(), "ws", "[max_loras * (E + 1)]"),
            Buffer("lora_ids", "int32_t", "max_loras + 1", host(lora_ids), "in", "[max_loras + 1] = -1, 0..max_loras-1"),
            Buffer("token_mask", "int32_t", "(size_t)max_loras * num_tokens", zero(), "ws", "[max_loras * T]"),
        ),
        launch_stmts=tuple(launch), grid="dim3((max_loras + 1) * 2)", block="blockDim", smem="shared_mem_size",
        args=("topk_ids", "token_lora_mapping", "block_size", "expert_map", "(int)num_experts", "(int)max_loras",
              "numel", "max_num_tokens_padded", "max_num_m_blocks", "sorted_token_ids", "expert_ids", "topk_num",
              "num_tokens_post_pad", "adapter_enabled", "cumsum", "WARP_SIZE", "(int32_t)padded_num_experts",
              "lora_ids", "token_mask", "false"),
        dispatch="VLLM_STABLE_DISPATCH_INTEGRAL_TYPES(int32 topk_ids); non-small-batch path",
        wrapper=f"{c.at(AL, 'void moe_lora_align_block_size(')} (moe_lora_align_block_size)",
        grid_expr="(max_loras + 1) * 2", block_expr="1024",
        smem_expr="CEILDIV(padded_num_experts, WARP_SIZE) * WARP_SIZE * sizeof(int32_t)",
    )


def _line(c: Ctx, text: str) -> int:
    return int(c.at(AL, text).rsplit(":", 1)[1])


_ = cpp_int
RECIPES = (
    cuda_recipe((f"{TK}:topkGating",), topk_gating, family=Family.MOE, needs=(Need.MOE,)),
    cuda_recipe((f"{AL}:moe_align_block_size_kernel",), moe_align, family=Family.MOE, needs=(Need.MOE,)),
    cuda_recipe((f"{AL}:count_and_sort_expert_tokens_kernel",), count_and_sort, family=Family.MOE,
                needs=(Need.MOE,)),
    cuda_recipe((f"{AL}:moe_lora_align_block_size_kernel",), moe_lora_align, family=Family.MOE,
                needs=(Need.MOE,)),
)
