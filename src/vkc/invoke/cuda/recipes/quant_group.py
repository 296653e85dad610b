"""per_token_group_quant_8bit_register_kernel: block-FP8 activation quant on the register path.

``per_token_group_quant_8bit`` (csrc/quantization/w8a8/fp8/per_token_group_quant.cu) takes this
kernel when ``CanUseRegisterPath``: group_size 128, 16-bit contiguous input and output, 16-byte
aligned pointers -- what every DeepSeek-V3 block-FP8 linear and MoE layer passes.  The scales are
column-major (``output_s`` [rows, groups] with stride [1, rows], what vLLM's CUTLASS block-FP8
GEMM asks for) unless the caller allocates them row-major (the fused-MoE path);
``is_column_major = output_s.stride(0) < output_s.stride(1)`` picks the instantiation.
"""
from __future__ import annotations

from vkc.errors import NotApplicableError
from vkc.invoke.cuda.plan import Buffer, Plan, Scale, Stmt, uniform, zero
from vkc.invoke.cuda.recipes.base import FP8, SIZEOF, TORCH_TYPES, Ctx, Family, cuda_recipe
from vkc.invoke.cuda.recipes.quant import fp8_group_consts

PG = "csrc/quantization/w8a8/fp8/per_token_group_quant.cu"
GROUP_SIZE = 128
COL_MAJOR = "is_column_major"   # Ctx.bound key: 1 column-major scales, 0 row-major (a traced call's choice)


def per_token_group_register(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    if es != 2 or d.hidden % GROUP_SIZE:
        raise NotApplicableError(
            f"per_token_group_quant_8bit_register_kernel is not launched for {d.model_id}: CanUseRegisterPath "
            f"needs 16-bit input and K % {GROUP_SIZE} == 0 (dtype {c.dtype}, hidden_size {d.hidden})",
            hint="use a block-FP8 model, e.g. deepseek-ai/DeepSeek-V3")
    col = c.bound.get(COL_MAJOR, (1, ""))[0] == 1
    after = _l(c, "static void per_token_group_quant_8bit(")
    consts = fp8_group_consts(c, d.hidden, scalar_t, "block-FP8 group size 128 (CanUseRegisterPath)") + (
        c.w(PG, "constexpr int REG_THREADS_PER_GROUP = 8;", after=after),
        c.w(PG, "constexpr int REG_BLOCK_THREADS = 256;", after=after),
    )
    derived = (
        Stmt("const int64_t num_rows = num_tokens_ll;", "vkc: activations [num_rows, hidden_size], contiguous"),
        c.w(PG, "const int num_groups = input.numel() / group_size;",
            "const int num_groups = (int)(num_rows * hidden_size / group_size);", after=after),
        Stmt("const int64_t groups_per_row = hidden_size / group_size;", "vkc: output_s [num_rows, groups_per_row]"),
        c.w(PG, "const int scale_num_rows = output_s.size(1);", "const int scale_num_rows = (int)groups_per_row;",
            after=after),
        c.w(PG, "const int scale_stride = output_s.stride(1);",
            "const int scale_stride = (int)num_rows;" if col else "const int scale_stride = 1;", after=after,
            note="column-major scales: stride [1, num_rows]" if col else "row-major scales: stride [groups, 1]"),
    )
    launch = (
        c.w(PG, "const int64_t reg_groups_per_block = REG_BLOCK_THREADS / REG_THREADS_PER_GROUP;", after=after),
        c.w(PG, "const int reg_num_blocks = static_cast<int>( (num_groups + reg_groups_per_block - 1) / "
                "reg_groups_per_block);", after=after),
    )
    col_t = "true" if col else "false"
    return Plan(
        kernel_symbol="vllm::per_token_group_quant_8bit_register_kernel",
        template_args=(scalar_t, FP8, col_t, "false"),
        consts=consts,
        scale=Scale("num_tokens_ll", f"(size_t)hidden_size * ({es} + 1) + (size_t)hidden_size / {GROUP_SIZE} * 4",
                    small=8, maximum=c.tokens_max(), note="input + fp8 out + one float scale per 128-group"),
        derived=derived,
        buffers=(
            Buffer("input", scalar_t, "(size_t)num_rows * hidden_size", uniform(-3.0, 3.0), "in", "[rows, hidden]"),
            Buffer("output_q", FP8, "(size_t)num_rows * hidden_size", zero(), "out", "[rows, hidden] fp8"),
            Buffer("output_s", "float", "(size_t)num_groups", zero(), "out",
                   "[rows, hidden / 128], " + ("stride [1, rows]" if col else "stride [hidden / 128, 1]")),
        ),
        launch_stmts=launch,
        grid="dim3(reg_num_blocks)", block="dim3(REG_BLOCK_THREADS)", smem="0",
        args=("input", "(void*)output_q", "output_s", "(int64_t)num_groups", "(float)eps", "(float)min_8bit",
              "(float)max_8bit", "scale_num_rows", "scale_stride"),
        dispatch=(f"FLOATING_TYPES({c.dtype}) x FP8_TYPES; CanUseRegisterPath (group 128, 16-bit, contiguous, "
                  f"16-byte aligned); is_column_major={col_t}, scale_ue8m0=false: "
                  f"LAUNCH_REGISTER_INST(T, DST_DTYPE, {col_t}, false)"),
        wrapper=f"{c.at(PG, 'static void per_token_group_quant_8bit(')} (per_token_group_quant_8bit)",
        grid_expr="ceil(num_groups / (256 / 8))", block_expr="256", smem_expr="0",
        notes=("vLLM launches it with cudaLaunchKernelEx + PDL; same grid/block here",),
    )


def _l(c: Ctx, text: str) -> int:
    return int(c.at(PG, text).rsplit(":", 1)[1])


RECIPES = (cuda_recipe((f"{PG}:per_token_group_quant_8bit_register_kernel",), per_token_group_register,
                       family=Family.QUANT),)
