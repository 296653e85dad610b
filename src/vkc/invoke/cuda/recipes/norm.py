"""RMSNorm family: rms_norm_kernel, fused_add_rms_norm_kernel, rms_norm_static_fp8_quant_kernel."""
from __future__ import annotations

import math

from vkc.invoke.cuda.literals import cpp_str
from vkc.invoke.cuda.plan import Buffer, Check, Plan, Scale, Stmt, const, uniform
from vkc.invoke.cuda.recipes.base import (
    FP8,
    SIZEOF,
    TORCH_TYPES,
    Ctx,
    Family,
    cuda_recipe,
)

LN = "csrc/layernorm_kernels.cu"
LNQ = "csrc/layernorm_quant_kernels.cu"
_MAX_BLOCK = "const int max_block_size = batch_invariant_launch ? 1024 : ((num_tokens < 256) ? 1024 : 256);"


def _common(c: Ctx, file: str) -> list[Stmt]:
    d = c.dims
    return [
        c.const_int("hidden_size", d.hidden, "hidden_size", src=(file, "int hidden_size = input.size(-1);")),
        c.const_float("epsilon", d.eps, "rms_norm_eps"),
        Stmt("const bool batch_invariant_launch = false;", "vkc: VLLM_BATCH_INVARIANT unset",
             "vllm::vllm_is_batch_invariant() is false by default"),
    ]


def _vec_size(scalar_t: str, hidden: int) -> int:
    v = math.gcd(16 // SIZEOF[scalar_t], hidden)
    return v if v in (16, 8, 4, 2) else 1   # VLLM_STABLE_DISPATCH_VEC_SIZE


def rms_norm(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    vec = _vec_size(scalar_t, d.hidden)
    es = SIZEOF[scalar_t]
    consts = _common(c, LN) + [
        Stmt(f"using scalar_t = {scalar_t};", f"dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES({c.dtype})"),
    ]
    derived = [
        Stmt("const int num_tokens = (int)num_tokens_ll;", "vkc: [num_tokens, hidden_size] input, 2-D"),
        c.w(LN, "int64_t input_stride_d2 = input.stride(-2);", "const int64_t input_stride_d2 = hidden_size;",
            note="contiguous 2-D input"),
        c.w(LN, "int64_t input_stride_d3 = (num_dims >= 3) ? input.stride(-3) : 0;",
            "const int64_t input_stride_d3 = 0, input_stride_d4 = 0, input_shape_d2 = 0, input_shape_d3 = 0;",
            note="num_dims == 2"),
    ]
    launch = [
        c.w(LN, _MAX_BLOCK),
        c.w(LN, "dim3 grid(num_tokens);"),
        c.w(LN, "const int calculated_vec_size = std::gcd(16 / sizeof(scalar_t), hidden_size);"),
        c.w(LN, "const int block_size = std::min(hidden_size / calculated_vec_size, max_block_size);"),
        c.w(LN, "dim3 block(block_size);"),
    ]
    return Plan(
        kernel_symbol="vllm::rms_norm_kernel",
        template_args=(scalar_t, str(vec), "2", "true"),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"2 * hidden_size * {es}", small=8, maximum=c.tokens_max(),
                    fixed_bytes=f"hidden_size * {es}",
                    note="input + out: 2 * num_tokens * hidden_size elements"),
        derived=tuple(derived),
        buffers=(
            Buffer("input", scalar_t, "(size_t)num_tokens * hidden_size", uniform(-1.0, 1.0), "in",
                   "[num_tokens, hidden_size]"),
            Buffer("weight", scalar_t, "hidden_size", uniform(0.5, 1.5), "in", "[hidden_size]"),
            Buffer("out", scalar_t, "(size_t)num_tokens * hidden_size", const(0.0), "out",
                   "[num_tokens, hidden_size]"),
        ),
        launch_stmts=tuple(launch),
        checks=(Check(f"std::gcd(16 / sizeof(scalar_t), hidden_size) == {vec}",
                      cpp_str(f"VLLM_STABLE_DISPATCH_VEC_SIZE picks vec_size={vec}")),),
        grid="grid", block="block", smem="0",
        args=("out", "input", "input_stride_d2", "input_stride_d3", "input_stride_d4", "input_shape_d2",
              "input_shape_d3", "weight", "/*weight_stride=*/0", "epsilon", "num_tokens", "hidden_size"),
        dispatch=(f"VLLM_STABLE_DISPATCH_RANK234(2) x FLOATING_TYPES({c.dtype} -> {scalar_t}) x "
                  f"VEC_SIZE(gcd(16/sizeof, {d.hidden}) = {vec}); has_weight=true"),
        wrapper=f"{c.at(LN, 'void rms_norm(')} (rms_norm)",
        grid_expr="dim3 grid(num_tokens)",
        block_expr="min(hidden_size / calculated_vec_size, max_block_size)", smem_expr="0",
    )


def fused_add_rms_norm(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    # wrapper: width 8 when pointers are 16-byte aligned (cudaMalloc: yes) and
    # hidden/strides are multiples of 8, and not batch-invariant; else width 0.
    # The kernel name covers two enable_if overloads; the generic one (width 0) is
    # chosen when the extraction is that overload (csrc/...:fused_add_rms_norm_kernel@<line>).
    generic_line = int(c.at(LN, "std::enable_if_t<(width == 0) || !_typeConvert<scalar_t>::exists>").rsplit(":", 1)[1])
    generic = c.extraction.kernel.line >= generic_line
    width = 8 if d.hidden % 8 == 0 and not generic else 0
    consts = _common(c, LN) + [Stmt(f"using scalar_t = {scalar_t};",
                                    f"dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES({c.dtype})")]
    derived = [
        Stmt("const int num_tokens = (int)num_tokens_ll;", "vkc: [num_tokens, hidden_size] input and residual"),
        c.w(LN, "int64_t input_stride = input.stride(-2);", "const int64_t input_stride = hidden_size;"),
        c.w(LN, "int64_t residual_stride = residual.stride(-2);", "const int64_t residual_stride = hidden_size;"),
    ]
    launch = [
        c.w(LN, "dim3 grid(num_tokens);", after=int(c.at(LN, "void fused_add_rms_norm(").split(":")[1])),
        c.w(LN, _MAX_BLOCK, after=int(c.at(LN, "void fused_add_rms_norm(").split(":")[1])),
        c.w(LN, "dim3 block(std::min(hidden_size, max_block_size));"),
    ]
    if width:  # the generic overload (width 0) is launched without the alignment test
        launch += [
            c.w(LN, "constexpr int vector_width = 8;"),
            c.w(LN, "bool offsets_are_multiple_of_vector_width = hidden_size % vector_width == 0 && "
                    "input_stride % vector_width == 0 && residual_stride % vector_width == 0;"),
        ]
    return Plan(
        kernel_symbol="vllm::fused_add_rms_norm_kernel",
        template_args=(scalar_t, str(width), "true"),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"2 * hidden_size * {es}", small=8, maximum=c.tokens_max(),
                    fixed_bytes=f"hidden_size * {es}", note="input + residual: 2 * num_tokens * hidden_size"),
        derived=tuple(derived),
        buffers=(
            Buffer("input", scalar_t, "(size_t)num_tokens * hidden_size", uniform(-1.0, 1.0), "inout",
                   "[num_tokens, hidden_size]"),
            Buffer("residual", scalar_t, "(size_t)num_tokens * hidden_size", uniform(-1.0, 1.0), "inout",
                   "[num_tokens, hidden_size]"),
            Buffer("weight", scalar_t, "hidden_size", uniform(0.5, 1.5), "in", "[hidden_size]"),
        ),
        launch_stmts=tuple(launch),
        checks=(Check("offsets_are_multiple_of_vector_width",
                      cpp_str("16-byte aligned pointers and strides: LAUNCH_FUSED_ADD_RMS_NORM(8)")),) if width else (),
        grid="grid", block="block", smem="0",
        args=("input", "input_stride", "residual", "weight", "epsilon", "num_tokens", "hidden_size",
              "residual_stride"),
        dispatch=(f"FLOATING_TYPES({c.dtype} -> {scalar_t}); LAUNCH_FUSED_ADD_RMS_NORM({width}, true): "
                  + ("16-byte aligned cudaMalloc pointers, hidden % 8 == 0, not batch-invariant" if width else
                     "the generic overload (vLLM takes it for unaligned pointers/strides or batch-invariant mode)")),
        wrapper=f"{c.at(LN, 'void fused_add_rms_norm(')} (fused_add_rms_norm)",
        grid_expr="dim3 grid(num_tokens)", block_expr="min(hidden_size, max_block_size)", smem_expr="0",
        notes=(("inout buffers: the kernel writes input (normed) and residual (sum) in place; "
               "repeated timing launches keep the values finite"),),
    )


def rms_norm_static_fp8_quant(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    vec = _vec_size(scalar_t, d.hidden)
    es = SIZEOF[scalar_t]
    consts = _common(c, LNQ) + [
        Stmt(f"using scalar_t = {scalar_t};", f"dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES({c.dtype})"),
        Stmt(f"using fp8_t = {FP8};", "dispatch: VLLM_STABLE_DISPATCH_FP8_TYPES(Float8_e4m3fn) (CUDA)"),
    ]
    derived = [
        Stmt("const int num_tokens = (int)num_tokens_ll;", "vkc: [num_tokens, hidden_size] input"),
        c.w(LNQ, "int input_stride = input.stride(-2);", "const int input_stride = hidden_size;"),
    ]
    launch = [
        c.w(LNQ, _MAX_BLOCK),
        c.w(LNQ, "dim3 grid(num_tokens);"),
        c.w(LNQ, "const int calculated_vec_size = std::gcd(16 / sizeof(scalar_t), hidden_size);"),
        c.w(LNQ, "const int block_size = std::min(hidden_size / calculated_vec_size, max_block_size);"),
        c.w(LNQ, "dim3 block(block_size);"),
    ]
    return Plan(
        kernel_symbol="vllm::rms_norm_static_fp8_quant_kernel",
        template_args=(scalar_t, FP8, str(vec)),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"hidden_size * ({es} + 1)", small=8, maximum=c.tokens_max(),
                    fixed_bytes=f"hidden_size * {es}", note="input (scalar_t) + out (fp8) per token"),
        derived=tuple(derived),
        buffers=(
            Buffer("out", "fp8_t", "(size_t)num_tokens * hidden_size", const(0.0), "out",
                   "[num_tokens, hidden_size] fp8"),
            Buffer("input", scalar_t, "(size_t)num_tokens * hidden_size", uniform(-1.0, 1.0), "in",
                   "[num_tokens, hidden_size]"),
            Buffer("weight", scalar_t, "hidden_size", uniform(0.5, 1.5), "in", "[hidden_size]"),
            Buffer("scale", "float", "1", const(0.05), "in", "[1] (positive)"),
        ),
        launch_stmts=tuple(launch),
        checks=(Check(f"std::gcd(16 / sizeof(scalar_t), hidden_size) == {vec}",
                      cpp_str(f"VLLM_STABLE_DISPATCH_VEC_SIZE picks vec_size={vec}")),),
        grid="grid", block="block", smem="0",
        args=("out", "input", "input_stride", "weight", "scale", "epsilon", "num_tokens", "hidden_size"),
        dispatch=f"FLOATING_TYPES({c.dtype} -> {scalar_t}) x FP8_TYPES(e4m3fn) x VEC_SIZE({vec})",
        wrapper=f"{c.at(LNQ, 'void rms_norm_static_fp8_quant(')} (rms_norm_static_fp8_quant)",
        grid_expr="dim3 grid(num_tokens)",
        block_expr="min(hidden_size / calculated_vec_size, max_block_size)", smem_expr="0",
    )


RECIPES = (
    cuda_recipe((f"{LN}:rms_norm_kernel",), rms_norm, family=Family.NORM),
    cuda_recipe((f"{LN}:fused_add_rms_norm_kernel",), fused_add_rms_norm, family=Family.NORM),
    cuda_recipe((f"{LNQ}:rms_norm_static_fp8_quant_kernel",), rms_norm_static_fp8_quant, family=Family.NORM),
)
