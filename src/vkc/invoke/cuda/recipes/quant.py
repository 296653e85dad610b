"""Activation quantization: dynamic_scaled_int8_quant_kernel, scaled_fp8_quant_kernel_strided_dynamic,
per_token_group_quant_8bit_kernel."""
from __future__ import annotations

from vkc.invoke.cuda.literals import cpp_str
from vkc.invoke.cuda.plan import Buffer, Check, Plan, Scale, Stmt, const, uniform, zero
from vkc.invoke.cuda.recipes.base import (
    FP8,
    SIZEOF,
    TORCH_TYPES,
    Ctx,
    Family,
    cuda_recipe,
)

I8 = "csrc/quantization/w8a8/int8/scaled_quant.cu"
F8 = "csrc/quantization/w8a8/fp8/common.cu"
PG = "csrc/quantization/w8a8/fp8/per_token_group_quant.cu"
GROUP_SIZE = 128   # block-FP8 checkpoints (DeepSeek-V3 weight_block_size [128, 128], Qwen3-FP8)


def _tokens(c: Ctx) -> Stmt:
    return Stmt("const int num_tokens = (int)num_tokens_ll;", "vkc: activations [num_tokens, hidden_size] (GEMM input)")


def int8_quant(c: Ctx) -> Plan:
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    return Plan(
        kernel_symbol="vllm::dynamic_scaled_int8_quant_kernel", template_args=(scalar_t, "float"),
        consts=(c.const_int("hidden_size", c.dims.hidden, "hidden_size (K of the next GEMM)",
                            src=(I8, "int const hidden_size = input.size(-1);")),
                Stmt(f"using scalar_t = {scalar_t};", f"dispatch: FLOATING_TYPES({c.dtype}); azp unset")),
        scale=Scale("num_tokens_ll", f"(size_t)hidden_size * ({es} + 1) + 4", small=8, maximum=c.tokens_max(),
                    note="input + int8 out + one scale per token"),
        derived=(_tokens(c),),
        buffers=(
            Buffer("input", scalar_t, "(size_t)num_tokens * hidden_size", uniform(-3.0, 3.0), "in", "[T, hidden]"),
            Buffer("output", "int8_t", "(size_t)num_tokens * hidden_size", zero(), "out", "[T, hidden] int8"),
            Buffer("scale_out", "float", "num_tokens", zero(), "out", "[T]"),
        ),
        launch_stmts=(c.w(I8, "dim3 const grid(num_tokens);", after=_l(c, I8, "void dynamic_scaled_int8_quant(")),
                      c.w(I8, "dim3 const block(std::min(hidden_size, 256));", after=_l(c, I8, "void dynamic_scaled_int8_quant("))),
        grid="grid", block="block", smem="0", args=("input", "output", "scale_out", "hidden_size"),
        dispatch=f"FLOATING_TYPES({c.dtype} -> {scalar_t}); symmetric (no azp) -> <scalar_t, float>",
        wrapper=f"{c.at(I8, 'void dynamic_scaled_int8_quant(')} (dynamic_scaled_int8_quant)",
        grid_expr="dim3 grid(num_tokens)", block_expr="min(hidden_size, 256)", smem_expr="0",
    )


def fp8_strided_dynamic(c: Ctx) -> Plan:
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    after = _l(c, F8, "void dynamic_scaled_fp8_quant(")
    return Plan(
        kernel_symbol="vllm::scaled_fp8_quant_kernel_strided_dynamic", template_args=(scalar_t, FP8),
        consts=(c.const_int("hidden_size", c.dims.hidden, "hidden_size (K of the next GEMM)",
                            src=(F8, "const int hidden_size = input.size(-1);")),
                Stmt(f"using scalar_t = {scalar_t};", f"dispatch: FLOATING_TYPES({c.dtype})"),
                Stmt(f"using fp8_t = {FP8};", "dispatch: FP8_TYPES (CUDA: Float8_e4m3fn)"),
                Stmt("constexpr int kFp8QuantBlockSize = 256;", c.at(F8, "constexpr int kFp8QuantBlockSize = 256;"))),
        scale=Scale("num_tokens_ll", f"(size_t)hidden_size * ({es} + 1)", small=8, maximum=c.tokens_max(),
                    note="input + fp8 out"),
        derived=(_tokens(c),
                 c.w(F8, "const int64_t in_row_stride = input.stride(-2);", "const int64_t in_row_stride = hidden_size;", after=after),
                 c.w(F8, "const int64_t out_row_stride = out.stride(-2);", "const int64_t out_row_stride = hidden_size;", after=after)),
        buffers=(
            Buffer("out", "fp8_t", "(size_t)num_tokens * hidden_size", zero(), "out", "[T, hidden] fp8"),
            Buffer("input", scalar_t, "(size_t)num_tokens * hidden_size", uniform(-3.0, 3.0), "in", "[T, hidden]"),
            Buffer("scale", "float", "1", const(3.0 / 448.0), "in",
                   "[1] positive (what absmax_reduction_flat leaves: max|x| / 448)"),
        ),
        launch_stmts=(c.w(F8, "const int block_size = vllm::kFp8QuantBlockSize;", "const int block_size = kFp8QuantBlockSize;", after=after),
                      c.w(F8, "dim3 grid(num_tokens);", after=after), c.w(F8, "dim3 block(block_size);", after=after)),
        grid="grid", block="block", smem="0",
        args=("out", "input", "scale", "hidden_size", "in_row_stride", "out_row_stride"),
        dispatch=f"FLOATING_TYPES({c.dtype} -> {scalar_t}) x FP8_TYPES(e4m3fn); launched after the absmax reduction",
        wrapper=f"{c.at(F8, 'void dynamic_scaled_fp8_quant(')} (dynamic_scaled_fp8_quant)",
        grid_expr="dim3 grid(num_tokens)", block_expr="kFp8QuantBlockSize = 256", smem_expr="0",
        notes=("the scale is pre-set to a positive value instead of running the preceding absmax reduction kernel",),
    )


_GPB = ("auto GetGroupsPerBlock = [](int64_t num_groups) -> int { if (num_groups % 16 == 0) return 16; "
        "if (num_groups % 8 == 0) return 8; if (num_groups % 4 == 0) return 4; if (num_groups % 2 == 0) return 2; "
        "return 1; };")


def per_token_group(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    if d.hidden % GROUP_SIZE:
        from vkc.errors import NotApplicableError
        raise NotApplicableError(
            f"per_token_group_quant_8bit_kernel is not launched for {d.model_id}: hidden_size {d.hidden} is not a "
            f"multiple of the block-FP8 quant group {GROUP_SIZE} (vLLM checks input.size(-1) % group_size == 0; "
            "block-FP8 checkpoints always have K % 128 == 0)",
            hint="use a model whose hidden size is a multiple of 128, e.g. deepseek-ai/DeepSeek-V3")
    after = _l(c, PG, "static void per_token_group_quant_8bit(")
    consts = fp8_group_consts(c, d.hidden, scalar_t, "block-FP8 group size 128") + (
        Stmt("constexpr int THREADS_PER_GROUP = 16;", c.at(PG, "constexpr int THREADS_PER_GROUP = 16;")),
        Stmt(_GPB, c.at(PG, "inline int GetGroupsPerBlock(int64_t num_groups) {"), "host helper, copied"),
    )
    derived = (
        Stmt("const int64_t num_rows = num_tokens_ll;", "vkc: activations [num_rows, hidden_size], even row count"),
        Stmt("const int num_groups = (int)(num_rows * hidden_size / group_size);", c.at(PG, "const int num_groups = input.numel() / group_size;")),
        c.w(PG, "const int64_t groups_per_row = input.size(-1) / group_size;", "const int64_t groups_per_row = hidden_size / group_size;"),
    )
    launch = (
        c.w(PG, "const int64_t policy_num_groups = (num_rows + (num_rows & 1)) * groups_per_row;"),
        c.w(PG, "const int groups_per_block = GetGroupsPerBlock(policy_num_groups);", after=after),
        c.w(PG, "const bool needs_bounds_check = num_groups % groups_per_block != 0;"),
        c.w(PG, "const int num_blocks = (num_groups + groups_per_block - 1) / groups_per_block;", after=after),
        c.w(PG, "const int num_threads = groups_per_block * THREADS_PER_GROUP;", after=after),
        c.w(PG, "const int scale_num_rows = output_s.size(1);", "const int scale_num_rows = (int)groups_per_row;",
            note="row-major scales [num_rows, groups_per_row]"),
        c.w(PG, "const int scale_stride = output_s.stride(1);", "const int scale_stride = 1;"),
        c.w(PG, "size_t smem_bytes = static_cast<size_t>(groups_per_block) * group_size * sizeof(T);"),
    )
    return Plan(
        kernel_symbol="vllm::per_token_group_quant_8bit_kernel",
        template_args=(scalar_t, FP8, "false", "false", "float", "false"),
        consts=consts,
        scale=Scale("num_tokens_ll", f"(size_t)hidden_size * ({es} + 1) + (size_t)hidden_size / {GROUP_SIZE} * 4",
                    small=8, multiple=2, maximum=c.tokens_max(), note="input + fp8 out + scales; even row count"),
        derived=derived,
        buffers=(
            Buffer("input", scalar_t, "(size_t)num_rows * hidden_size", uniform(-3.0, 3.0), "in", "[rows, hidden]"),
            Buffer("output_q", FP8, "(size_t)num_rows * hidden_size", zero(), "out", "[rows, hidden] fp8"),
            Buffer("output_s", "float", "(size_t)num_groups", zero(), "out", "[rows, hidden / 128]"),
        ),
        launch_stmts=launch,
        checks=(Check("!needs_bounds_check", cpp_str("instantiated with CHECK_BOUNDS=false")),),
        grid="dim3(num_blocks)", block="dim3(num_threads)", smem="smem_bytes",
        args=("input", "(void*)output_q", "output_s", "(int)group_size", "num_groups", "groups_per_block", "(float)eps",
              "(float)min_8bit", "(float)max_8bit", "scale_num_rows", "scale_stride"),
        dispatch=(f"FLOATING_TYPES({c.dtype}) x FP8_TYPES; row-major scales, scale_ue8m0=false, "
                  "LAUNCH_KERNEL_INST(..., CHECK_BOUNDS = needs_bounds_check = false)"),
        wrapper=f"{c.at(PG, 'static void per_token_group_quant_8bit(')} (per_token_group_quant_8bit)",
        grid_expr="ceil(num_groups / groups_per_block)", block_expr="groups_per_block * 16",
        smem_expr="groups_per_block * group_size * sizeof(T)",
        notes=(("with group_size 128 and 16-bit contiguous input vLLM 0.33.0 routes to "
               "per_token_group_quant_8bit_register_kernel; this program times the generic kernel (the path for "
               "other group sizes and fp32 input) at the same shapes"),
               "vLLM launches it with cudaLaunchKernelEx + PDL; same grid/block/smem here"),
    )


def fp8_group_consts(c: Ctx, hidden: int, scalar_t: str, group_note: str) -> tuple[Stmt, ...]:
    """The constants and dtype dispatch of ``per_token_group_quant_8bit`` (both of its kernels)."""
    return (
        c.const_int("hidden_size", hidden, "hidden_size (K of the next GEMM)"),
        c.const_int("group_size", GROUP_SIZE, group_note, ctype="int64_t"),
        c.const_float("eps", 1e-10, "vLLM per_token_group_quant_fp8 eps", ctype="double"),
        c.const_float("min_8bit", -448.0, "torch.finfo(float8_e4m3fn).min", ctype="double"),
        c.const_float("max_8bit", 448.0, "torch.finfo(float8_e4m3fn).max", ctype="double"),
        Stmt(f"using T = {scalar_t};", f"dispatch: FLOATING_TYPES({c.dtype})"),
        Stmt(f"using DST_DTYPE = {FP8};", "dispatch: FP8_TYPES (CUDA: Float8_e4m3fn)"),
    )


def _l(c: Ctx, f: str, text: str) -> int:
    return int(c.at(f, text).rsplit(":", 1)[1])


RECIPES = (
    cuda_recipe((f"{I8}:dynamic_scaled_int8_quant_kernel",), int8_quant, family=Family.QUANT),
    cuda_recipe((f"{F8}:scaled_fp8_quant_kernel_strided_dynamic",), fp8_strided_dynamic, family=Family.QUANT),
    cuda_recipe((f"{PG}:per_token_group_quant_8bit_kernel",), per_token_group, family=Family.QUANT),
)
