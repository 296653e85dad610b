"""act_and_mul_kernel as launched by silu_and_mul (LAUNCH_ACTIVATION_GATE_KERNEL), and
swigluoai_and_mul_kernel as launched by swigluoai_and_mul (LAUNCH_SIGLUOAI_AND_MUL: gpt-oss's experts)."""
from __future__ import annotations

import re
from pathlib import Path

from vkc.errors import NotApplicableError
from vkc.invoke.cuda.literals import cpp_float, cpp_str
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


BINDINGS = "csrc/torch_bindings.cpp"
PAD_LIMIT = 256      # a MoE backend may pad the expert width by less than this (as moe_sum's recipe)


def _schema_default(c: Ctx, op: str, arg: str) -> tuple[float, str]:
    """A float argument's default in the op's schema string (``float alpha=1.702``), and where."""
    where = c.at(BINDINGS, f'"{op}(Tensor! out')
    file, _, line_s = where.rpartition(":")       # the file the schema is in (a recipe may follow a moved file)
    line = int(line_s)
    text = " ".join((Path(c.tree.root) / file).read_text(errors="replace").splitlines()[line - 1:line + 3])
    m = re.search(rf"float\s+{arg}\s*=\s*([0-9.eE+-]+)", text.replace('" "', "").replace('"', ""))
    if m is None:
        raise NotApplicableError(f"{op}'s schema at {where} has no default for {arg}",
                                 hint="the recipe was written for vLLM 0.33.0's schema")
    return float(m.group(1)), f"{op} schema default ({where})"


def _swiglu_width(c: Ctx) -> tuple[int, str]:
    """d: the expert width, or the padded one the traced call shows (gpt-oss's MXFP4 Marlin experts
    compute [T*k, 2*2944] for moe_intermediate 2880)."""
    d = c.dims
    width = d.moe_intermediate or d.intermediate
    if not width:
        raise NotApplicableError(f"model {d.model_id} has no intermediate_size for swigluoai_and_mul_kernel",
                                 hint="use openai/gpt-oss-120b or openai/gpt-oss-20b")
    got = c.bound.get("d")
    if got and width < got[0] < width + PAD_LIMIT and got[0] % 64 == 0:
        return got[0], f"expert width {width} padded to {got[0]} by the MoE backend (traced)"
    return width, "moe_intermediate_size (expert MLP)" if d.moe_intermediate else "intermediate_size"


def swigluoai_and_mul(c: Ctx) -> Plan:
    d = c.dims
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    width, why = _swiglu_width(c)
    alpha, alpha_src = _schema_default(c, "swigluoai_and_mul", "alpha")
    limit, limit_src = _schema_default(c, "swigluoai_and_mul", "limit")
    macro = int(c.at(ACT, "#define LAUNCH_SIGLUOAI_AND_MUL").rsplit(":", 1)[1])
    consts = [
        Stmt(f"const int d = {width};", "traced: input.size(-1) / 2" if "traced" in why else f"model: {why}",
             f"{why}; replaces {c.at(ACT, 'int d = input.size(-1) / 2;', after=macro)}: int d = input.size(-1) / 2;"),
        Stmt(f"const float alpha = {cpp_float(alpha)};", f"vllm: {alpha_src}",
             "vLLM's fused-MoE activation (fused_moe/activation.py) passes neither alpha nor limit"),
        Stmt(f"const float limit = {cpp_float(limit)};", f"vllm: {limit_src}"),
        Stmt(f"using scalar_t = {scalar_t};", f"dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES({c.dtype})"),
    ]
    derived = [c.w(ACT, "int64_t num_tokens = input.numel() / input.size(-1);",
                   "const int64_t num_tokens = num_tokens_ll;", after=macro,
                   note="rows = tokens x top_k (expert MLP input after the first grouped GEMM)" if d.is_moe else "")]
    launch = [c.w(ACT, "dim3 grid(num_tokens);", after=macro), c.w(ACT, "dim3 block(std::min(d, 1024));", after=macro)]
    return Plan(
        kernel_symbol="vllm::swigluoai_and_mul_kernel",
        template_args=(scalar_t, f"vllm::swigluoai_and_mul<{scalar_t}>"), consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"3 * (size_t)d * {es}", small=8, maximum=c.tokens_max(),
                    note="input [rows, 2*d] interleaved (gate, up) + out [rows, d]"),
        derived=tuple(derived),
        buffers=(
            Buffer("out", scalar_t, "(size_t)num_tokens * d", const(0.0), "out", "[rows, d]"),
            # past +-limit on both sides, so the clamps of gate and up are exercised
            Buffer("input", scalar_t, "(size_t)num_tokens * 2 * d", uniform(-8.0, 8.0), "in",
                   "[rows, 2*d] interleaved gate0, up0, gate1, up1, ..."),
        ),
        launch_stmts=tuple(launch), checks=(),
        grid="grid", block="block", smem="0",
        args=("out", "input", "d", "alpha", "limit"),
        dispatch=f"swigluoai_and_mul: LAUNCH_SIGLUOAI_AND_MUL(vllm::swigluoai_and_mul, alpha, limit) "
                 f"x FLOATING_TYPES({c.dtype} -> {scalar_t})",
        wrapper=f"{c.at(ACT, 'void swigluoai_and_mul(')} (swigluoai_and_mul via LAUNCH_SIGLUOAI_AND_MUL at "
                f"{ACT}:{macro})",
        grid_expr="dim3 grid(num_tokens)", block_expr="min(d, 1024)", smem_expr="0",
        notes=(f"d: {why}",),
    )


RECIPES = (
    cuda_recipe((f"{ACT}:act_and_mul_kernel",), silu_and_mul, family=Family.ACTIVATION),
    cuda_recipe((f"{ACT}:swigluoai_and_mul_kernel",), swigluoai_and_mul, family=Family.ACTIVATION),
)
