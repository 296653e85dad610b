"""silu_and_mul_per_block_quant_kernel: SiLU-and-mul fused with block-FP8 quantization.

``silu_and_mul_per_block_quant`` (csrc/quantization/fused_kernels/fused_silu_mul_block_quant.cu) is
what vLLM's Triton fused-MoE experts call between the two grouped GEMMs of a block-FP8 model
(``fused_moe/experts/triton_moe.py``: gated SiLU, fp8 w8a8, ``block_shape == [128, 128]``, no LoRA,
no clamp): input ``[rows, 2 * N]`` (gate || up), fp8 output ``[rows, N]`` and one float scale per
128-group, row-major (``_custom_ops.silu_and_mul_per_block_quant``'s ``is_scale_transposed=False``).
"""
from __future__ import annotations

from vkc.errors import NotApplicableError
from vkc.invoke.cuda.plan import Buffer, Plan, Scale, Stmt, uniform, zero
from vkc.invoke.cuda.recipes.base import FP8, SIZEOF, TORCH_TYPES, Ctx, Family, cuda_recipe
from vkc.invoke.cuda.recipes.quant import GROUP_SIZE

SQ = "csrc/quantization/fused_kernels/fused_silu_mul_block_quant.cu"


def silu_and_mul_per_block_quant(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    width = d.moe_intermediate or d.intermediate
    if es != 2 or not width or width % GROUP_SIZE:
        raise NotApplicableError(
            f"silu_and_mul_per_block_quant_kernel is not launched for {d.model_id}: the wrapper takes fp16/bf16 "
            f"input and an expert width divisible by the group size {GROUP_SIZE} (dtype {c.dtype}, width {width})",
            hint="use a block-FP8 MoE model, e.g. deepseek-ai/DeepSeek-V3")
    why = "moe_intermediate_size (expert MLP, N of the second grouped GEMM)" if d.moe_intermediate else \
        "intermediate_size"
    host = int(c.at(SQ, "void silu_and_mul_per_block_quant(").rsplit(":", 1)[1])
    consts = (
        c.const_int("hidden_size", width, why, ctype="int32_t", src=(SQ, "int32_t hidden_size = out.size(-1);")),
        c.const_int("group_size", GROUP_SIZE, "block-FP8 group size (fused_moe passes group_size=128)",
                    ctype="int64_t"),
        Stmt(f"using scalar_in_t = {scalar_t};", f"dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES({c.dtype})"),
        Stmt(f"using scalar_out_t = {FP8};", "dispatch: VLLM_STABLE_DISPATCH_QUANT_TYPES (fp8 e4m3fn on CUDA)"),
    )
    derived = (
        c.w(SQ, "auto num_tokens = input.size(0);", "const int64_t num_tokens = num_tokens_ll;", after=host,
            note="rows = tokens x top_k (the expert MLP's first GEMM output)" if d.is_moe else ""),
        c.w(SQ, "int32_t num_groups = hidden_size / group_size;", after=host),
    )
    launch = (c.w(SQ, "dim3 grid(num_tokens, num_groups);", after=host), c.w(SQ, "dim3 block(group_size);", after=host))
    return Plan(
        kernel_symbol="vllm::silu_and_mul_per_block_quant_kernel",
        template_args=(scalar_t, FP8, "false", str(GROUP_SIZE)),
        consts=consts,
        scale=Scale("num_tokens_ll", f"(size_t)hidden_size * (2 * {es} + 1) + (size_t)hidden_size / {GROUP_SIZE} * 4",
                    small=8, maximum=c.tokens_max(), note="input [rows, 2N] + fp8 out [rows, N] + scales [rows, N/128]"),
        derived=derived,
        buffers=(
            Buffer("out", FP8, "(size_t)num_tokens * hidden_size", zero(), "out", "[rows, N] fp8"),
            Buffer("scales", "float", "(size_t)num_tokens * num_groups", zero(), "out",
                   "[rows, N / 128] row-major (is_scale_transposed=false)"),
            Buffer("input", scalar_t, "(size_t)num_tokens * 2 * hidden_size", uniform(-3.0, 3.0), "in",
                   "[rows, 2N] (gate || up)"),
        ),
        launch_stmts=launch,
        grid="grid", block="block", smem="0",
        args=("out", "scales", "input", "/*scale_ub=*/nullptr", "hidden_size"),
        dispatch=(f"FLOATING_TYPES({c.dtype}) x QUANT_TYPES(fp8 e4m3fn) x GROUP_SIZE({GROUP_SIZE}) x "
                  "BOOL(is_scale_transposed=false); scale_ub absent"),
        wrapper=f"{c.at(SQ, 'void silu_and_mul_per_block_quant(')} (silu_and_mul_per_block_quant)",
        grid_expr="dim3 grid(num_tokens, num_groups)", block_expr="group_size", smem_expr="0",
    )


RECIPES = (cuda_recipe((f"{SQ}:silu_and_mul_per_block_quant_kernel",), silu_and_mul_per_block_quant,
                       family=Family.QUANT),)
