"""act_and_mul_kernel as launched by silu_and_mul (LAUNCH_ACTIVATION_GATE_KERNEL)."""
from __future__ import annotations

from vkc.invoke.cuda.literals import cpp_str
from vkc.invoke.cuda.plan import Buffer, Check, Plan, Scale, Stmt, const, uniform
from vkc.invoke.cuda.recipes.base import SIZEOF, TORCH_TYPES, Ctx, Family, cuda_recipe

ACT = "csrc/activation_kernels.cu"
PACKED = {"c10::BFloat16": "__nv_bfloat162", "c10::Half": "half2", "float": "float2"}  # PackedTypeConverter


def silu_and_mul(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    packed = PACKED[scalar_t]
    es = SIZEOF[scalar_t]
    if d.is_moe:
        width = d.moe_intermediate or d.intermediate
        why = "moe_intermediate_size (expert MLP)" if d.moe_intermediate else "intermediate_size (per-expert)"
        rows_note = "rows = tokens x top_k (expert MLP input after the first grouped GEMM)"
        got = c.bound.get("d")
        if got and d.intermediate and got[0] == d.intermediate and got[0] != width:
            # a dense MLP layer of a MoE model (DeepSeek-V3's first_k_dense_replace layers)
            width, why, rows_note = d.intermediate, "intermediate_size (a dense layer of the MoE model)", "rows = tokens"
    else:
        width, why, rows_note = d.intermediate, "intermediate_size (dense MLP)", "rows = tokens"
    if not width:
        from vkc.errors import NotApplicableError
        raise NotApplicableError(f"model {d.model_id} has no intermediate_size for act_and_mul_kernel",
                                 hint="use a model with a gated MLP, e.g. meta-llama/Llama-3.1-8B-Instruct")
    vec_size = 16 // es                      # VecTraits<false>::ARCH_MAX_VEC_SIZE / element_size (sm_90)
    use_vec = width % vec_size == 0
    targs = (scalar_t, packed, f"vllm::silu_kernel<{scalar_t}>", f"vllm::packed_silu_kernel<{packed}>",
             "true", "true" if use_vec else "false", "false") + (("false",) if use_vec else ())
    consts = [
        c.const_int("d", width, why, src=(ACT, "int d = input.size(-1) / 2;")),
        Stmt(f"using scalar_t = {scalar_t};", f"dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES({c.dtype})"),
        Stmt("const int cc_major = 9;", "vkc: built for sm_90 (get_device_prop()->major on H100)"),
        Stmt("const size_t element_size = sizeof(scalar_t);", "vkc: input.element_size()"),
    ]
    derived = [Stmt("const int64_t num_tokens = num_tokens_ll;", f"vkc: {rows_note}")]
    launch = [
        c.w(ACT, "dim3 grid(num_tokens);"),
        c.w(ACT, "int support_vec = (CUDA_VERSION >= 12090 && cc_major >= 10 && num_tokens > 128) ? "
                 "vllm::VecTraits<true>::ARCH_MAX_VEC_SIZE : vllm::VecTraits<false>::ARCH_MAX_VEC_SIZE;"),
        c.w(ACT, "int vec_size = support_vec / input.element_size();",
            "int vec_size = support_vec / element_size;"),
        c.w(ACT, "const bool use_vec = (d % vec_size == 0);"),
        c.w(ACT, "dim3 block(std::min(d / vec_size, 1024));") if use_vec else c.w(ACT, "dim3 block(std::min(d, 1024));"),
    ]
    return Plan(
        kernel_symbol="vllm::act_and_mul_kernel", template_args=targs, consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"3 * (size_t)d * {es}", small=8, maximum=c.tokens_max(),
                    note="input [rows, 2*d] + out [rows, d]"),
        derived=tuple(derived),
        buffers=(
            Buffer("out", scalar_t, "(size_t)num_tokens * d", const(0.0), "out", "[rows, d]"),
            Buffer("input", scalar_t, "(size_t)num_tokens * 2 * d", uniform(-2.0, 2.0), "in", "[rows, 2*d] (gate | up)"),
        ),
        launch_stmts=tuple(launch),
        checks=(Check(f"use_vec == {'true' if use_vec else 'false'}", cpp_str("wrapper's use_vec matches the instantiation")),),
        grid="grid", block="block", smem="0",
        args=("out", "input", "d", "0.0f", "1.0f", "0.0f"),
        dispatch=(f"silu_and_mul: LAUNCH_ACTIVATION_GATE_KERNEL(silu_kernel, packed_silu_kernel, ACT_FIRST=true, "
                  f"HAS_CLAMP=false, 0.0f, 1.0f, 0.0f); sm_90 -> 128-bit vectors (use_256b=false), "
                  f"use_vec = d % {vec_size} == 0 -> {use_vec}"),
        wrapper=f"{c.at(ACT, 'void silu_and_mul(')} (silu_and_mul via LAUNCH_ACTIVATION_GATE_KERNEL "
                f"at {c.at(ACT, '#define LAUNCH_ACTIVATION_GATE_KERNEL')})",
        grid_expr="dim3 grid(num_tokens)",
        block_expr="min(d / vec_size, 1024)" if use_vec else "min(d, 1024)", smem_expr="0",
        notes=((f"{d.model_id} is MoE: {rows_note}",) if d.is_moe else ()),
    )


RECIPES = (cuda_recipe((f"{ACT}:act_and_mul_kernel",), silu_and_mul, family=Family.ACTIVATION),)
