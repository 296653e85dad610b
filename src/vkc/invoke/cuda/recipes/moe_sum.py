"""moe_sum_vec_kernel: the top-k reduction of the expert outputs, as ``moe_sum`` launches it without topk_ids.

``moe_sum(input [T, topk, H], output [T, H])`` (csrc/moe/moe_align_sum_kernels.cu): the 16-byte
vector path (``can_vec``: unit hidden stride, H and the row strides multiples of VEC, aligned
pointers) launches ``moe_sum_vec_kernel<scalar_t, int32_t, TOPK, false>`` for TOPK in
{1, 2, 4, 6, 8, 9}; other top-k values take ``moe_sum_vec_dynamic_kernel``, unaligned ones
``moe_sum_scalar_kernel``.
"""
from __future__ import annotations

from vkc.errors import NotApplicableError
from vkc.invoke.cuda.literals import cpp_str
from vkc.invoke.cuda.plan import Buffer, Check, Plan, Scale, Stmt, const, uniform
from vkc.invoke.cuda.recipes.base import SIZEOF, TORCH_TYPES, Ctx, Family, Need, cuda_recipe

AL = "csrc/moe/moe_align_sum_kernels.cu"
TOPK_CASES = (1, 2, 4, 6, 8, 9)     # the switch (topk) cases of LAUNCH_MOE_SUM_VEC
PAD_LIMIT = 256                     # a MoE backend may pad the hidden size by less than this


def _hidden(c: Ctx) -> tuple[int, str]:
    """The reduced width: the model's hidden size, or the padded one the traced call shows
    (gpt-oss's MXFP4 Marlin experts produce [T, k, 3072] for hidden 2880)."""
    d = c.dims
    got = c.bound.get("hidden_size")
    if got and got[0] != d.hidden and d.hidden < got[0] < d.hidden + PAD_LIMIT and got[0] % 128 == 0:
        return got[0], f"hidden_size {d.hidden} padded to {got[0]} by the MoE backend (traced)"
    return d.hidden, "hidden_size"


def moe_sum_vec(c: Ctx) -> Plan:
    d = c.dims
    assert d.topk
    scalar_t = TORCH_TYPES[c.dtype]
    es = SIZEOF[scalar_t]
    vec = 16 // es
    hidden, why = _hidden(c)
    if d.topk not in TOPK_CASES:
        raise NotApplicableError(
            f"moe_sum_vec_kernel is not launched for {d.model_id}: top-k {d.topk} is not a case of moe_sum's "
            f"switch ({', '.join(map(str, TOPK_CASES))}); it takes moe_sum_vec_dynamic_kernel",
            hint="use a model with top-k 1, 2, 4, 6, 8 or 9, e.g. Qwen/Qwen3-30B-A3B")
    if hidden % vec:
        raise NotApplicableError(
            f"moe_sum_vec_kernel is not launched for {d.model_id}: hidden {hidden} % {vec} != 0 (can_vec is "
            "false; moe_sum takes moe_sum_scalar_kernel)")
    consts = [
        c.const_int("hidden_size", hidden, why, src=(AL, "const int hidden_size = input.size(-1);")),
        c.const_int("topk", d.topk, "num_experts_per_tok", src=(AL, "const int topk = input.size(1);")),
        Stmt(f"using scalar_t = {scalar_t};", f"dispatch: VLLM_STABLE_DISPATCH_FLOATING_TYPES({c.dtype})"),
        Stmt("constexpr int VEC = vllm::moe::MOE_SUM_VEC<scalar_t>;",
             c.at(AL, "constexpr int VEC = vllm::moe::MOE_SUM_VEC<scalar_t>;",
                  after=_line(c, "#define LAUNCH_MOE_SUM_VEC(TOPK)"))),
    ]
    derived = [
        Stmt("const int64_t num_tokens = num_tokens_ll;", "vkc: output [T, H] rows (output.numel() / hidden_size)"),
        c.w(AL, "const int64_t stride_token = input.stride(0);", "const int64_t stride_token = (int64_t)topk * hidden_size;",
            after=_line(c), note="contiguous input [T, topk, H]"),
        c.w(AL, "const int64_t stride_topk = input.stride(1);", "const int64_t stride_topk = hidden_size;",
            after=_line(c)),
    ]
    after = _line(c, "#define LAUNCH_MOE_SUM_VEC(TOPK)")
    launch = [
        c.w(AL, "const int64_t n_vec = hidden_size / VEC;", after=after),
        c.w(AL, "const int64_t total = num_tokens * n_vec;", after=after),
        c.w(AL, "const int block = 256;", after=after),
        c.w(AL, "const dim3 grid(std::min<int64_t>((total + block - 1) / block, 65535));", after=after),
    ]
    return Plan(
        kernel_symbol="vllm::moe::moe_sum_vec_kernel", template_args=(scalar_t, "int32_t", str(d.topk), "false"),
        consts=tuple(consts),
        scale=Scale("num_tokens_ll", f"(size_t)(topk + 1) * hidden_size * {es}", small=8, maximum=c.tokens_max(),
                    note="expert outputs [T, topk, H] + sum [T, H]"),
        derived=tuple(derived),
        buffers=(
            Buffer("output", scalar_t, "(size_t)num_tokens * hidden_size", const(0.0), "out", "[T, H]"),
            Buffer("input", scalar_t, "(size_t)num_tokens * topk * hidden_size", uniform(-1.0, 1.0), "in",
                   "[T, topk, H] (weighted expert outputs)"),
        ),
        launch_stmts=tuple(launch),
        checks=(Check("hidden_size % VEC == 0 && stride_token % VEC == 0 && stride_topk % VEC == 0",
                      cpp_str("can_vec: the 16-byte vector path (moe_sum_vec_kernel)")),),
        grid="grid", block="dim3(block)", smem="0",
        args=("output", "input", "num_tokens", "hidden_size", "stride_token", "stride_topk", "nullptr", "nullptr",
              "0", "0"),
        bytes_moved=f"(double)num_tokens * (topk + 1) * hidden_size * {es}",
        dispatch=(f"moe_sum without topk_ids: FLOATING_TYPES({c.dtype} -> {scalar_t}); can_vec (VEC = {vec}); "
                  f"switch (topk) case {d.topk}: LAUNCH_MOE_SUM_VEC({d.topk})"),
        wrapper=f"{c.at(AL, 'void moe_sum(')} (moe_sum via LAUNCH_MOE_SUM_VEC)",
        grid_expr="min(ceil(num_tokens * hidden_size / VEC / 256), 65535)", block_expr="256", smem_expr="0",
        bytes_rule="the expert outputs [T, topk, H] read + output [T, H] written",
    )


def _line(c: Ctx, text: str = "void moe_sum(") -> int:
    return int(c.at(AL, text).rsplit(":", 1)[1])


RECIPES = (cuda_recipe((f"{AL}:moe_sum_vec_kernel",), moe_sum_vec, family=Family.MOE, needs=(Need.MOE,)),)
