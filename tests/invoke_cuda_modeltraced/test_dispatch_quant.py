"""Dispatch rules of the quantization ops (vkc.invoke.cuda.modeltraced.dispatch_quant) on the real tree.

Each case is a traced call built for one branch of the host function and the kernels vLLM's C++
launches for it; every name a rule answers must be one of the op's kernels in the tree's op map,
and every kernel of the op must be reached by some case (a renamed kernel fails loudly).
"""
from __future__ import annotations

import pytest
from dispatch_events import op_event, tensor

from vkc.index import build_index
from vkc.invoke.cuda.modeltraced import call_launches, launched_kernels, op_kernel_map
from vkc.modeltrace.records import ScalarArg, TensorArg, TracedEvent

_t, _ev = tensor, op_event


def _gemm(m: int, bit: int, exllama: bool) -> TracedEvent:
    k, n = 4096, 4096
    return _ev("_C::gptq_gemm", a=_t("float16", (m, k)), b_q_weight=_t("int32", (k * bit // 32, n)),
               b_gptq_qzeros=_t("int32", (32, n * bit // 32)), b_gptq_scales=_t("float16", (32, n)),
               use_exllama=exllama, use_v2_format=False, bit=bit)


def _situ(d: int, *, tokens: int = 16, dtype: str = "bfloat16", **kw: object) -> TracedEvent:
    return _ev("_C::situ_and_mul_quant", out=_t("float8_e4m3fn", (tokens, d)), scale=_t("float32", (tokens, d // 128)),
               input=_t(dtype, (tokens, 2 * d)), **kw)


def _fp8_norm(hidden: int, *, offset: int = 0, dtype: str = "bfloat16", stride: int | None = None) -> TracedEvent:
    s = stride or hidden
    return _ev("_C::fused_add_rms_norm_static_fp8_quant", result=_t("float8_e4m3fn", (8, hidden)),
               input=_t(dtype, (8, hidden), offset=offset, stride=(s, 1)), residual=_t(dtype, (8, hidden)),
               weight=_t(dtype, (hidden,)), scale=_t("float32", (1,)), epsilon=1e-6)


def _int8(kind: str, azp: object) -> TracedEvent:
    x = {"azp": azp} if azp is not ... else {}
    return _ev(f"_C::{kind}_scaled_int8_quant", result=_t("int8", (8, 4096)), input=_t("bfloat16", (8, 4096)),
               scale=_t("float32", (1,)), **x)


_FP8_Q = "scaled_fp8_quant_kernel_strided_dynamic"


def _fp8_dyn(inp: TensorArg) -> TracedEvent:
    return _ev("_C::dynamic_scaled_fp8_quant", result=_t("float8_e4m3fn", inp.shape), input=inp, scale=_t("float32", (1,)))


def _group_int8(inp: TensorArg, group: int) -> TracedEvent:
    rows, width = inp.shape
    return _ev("_C::per_token_group_quant_int8", input=inp, output_q=_t("int8", inp.shape),
               output_s=_t("float32", (rows, width // group)), group_size=group, eps=1e-10, int8_min=-128.0,
               int8_max=127.0)


_NONE = ScalarArg(None)
CASES: list[tuple[str, TracedEvent, set[str] | None]] = [
    # exllama: quantized gemm up to 50 rows (24 at 8 bits), reconstruct + cuBLAS above
    ("exllama-4bit-decode", _gemm(8, 4, True), {"gemm_half_q_half_gptq_4bit_kernel"}),
    ("exllama-4bit-50rows", _gemm(50, 4, True), {"gemm_half_q_half_gptq_4bit_kernel"}),
    ("exllama-4bit-51rows", _gemm(51, 4, True), {"reconstruct_exllama_4bit_kernel"}),
    ("exllama-8bit-24rows", _gemm(24, 8, True), {"gemm_half_q_half_gptq_8bit_kernel"}),
    ("exllama-8bit-25rows", _gemm(25, 8, True), {"reconstruct_exllama_8bit_kernel"}),
    ("exllama-2bit", _gemm(3, 2, True), {"gemm_half_q_half_gptq_2bit_kernel"}),
    ("exllama-3bit", _gemm(3, 3, True), {"gemm_half_q_half_gptq_3bit_kernel"}),
    ("exllama-2bit-prefill", _gemm(512, 2, True), {"reconstruct_exllama_2bit_kernel"}),
    ("exllama-3bit-prefill", _gemm(512, 3, True), {"reconstruct_exllama_3bit_kernel"}),
    ("exllama-no-rows", _gemm(0, 4, True), set()),
    ("exllama-6bit-null-kernel", _gemm(4, 6, True), set()),
    # not exllama: alt gemm for <= 8 rows at 4+ bits, reconstruct_gptq otherwise
    ("alt-4bit", _gemm(8, 4, False), {"gemm_half_q_half_alt_4bit_kernel"}),
    ("alt-8bit", _gemm(1, 8, False), {"gemm_half_q_half_alt_8bit_kernel"}),
    ("alt-4bit-9rows", _gemm(9, 4, False), {"reconstruct_gptq_kernel"}),
    ("alt-2bit", _gemm(1, 2, False), {"reconstruct_gptq_kernel"}),
    ("alt-3bit", _gemm(1, 3, False), {"reconstruct_gptq_3bit_kernel"}),
    ("gemm-no-bit", _ev("_C::gptq_gemm", a=_t("float16", (8, 4096)), use_exllama=True), None),
    ("shuffle-2", _ev("_C::gptq_shuffle", q_weight=_t("int32", (256, 4096)), bit=2), {"shuffle_2bit_kernel"}),
    ("shuffle-3", _ev("_C::gptq_shuffle", q_weight=_t("int32", (384, 4096)), bit=3), {"shuffle_3bit_kernel"}),
    ("shuffle-4", _ev("_C::gptq_shuffle", q_weight=_t("int32", (512, 4096)), bit=4), {"shuffle_4bit_kernel"}),
    ("shuffle-8", _ev("_C::gptq_shuffle", q_weight=_t("int32", (1024, 4096)), bit=8), {"shuffle_8bit_kernel"}),
    ("static-int8", _int8("static", _NONE), {"static_scaled_int8_quant_kernel"}),
    ("static-int8-azp", _int8("static", _t("int32", (1,))), {"static_scaled_int8_azp_quant_kernel"}),
    ("dynamic-int8", _int8("dynamic", _NONE), {"dynamic_scaled_int8_quant_kernel"}),
    ("dynamic-int8-azp", _int8("dynamic", _t("int32", (8, 1))), {"dynamic_scaled_int8_azp_quant_kernel"}),
    ("int8-azp-not-recorded", _int8("dynamic", ...), None),      # ``Tensor? azp`` has no schema default
    # situ_and_mul_quant: pipelined for Kimi-K3's d 3072 with beta 4, linear_beta 25; scalar otherwise
    ("situ-kimi", _situ(3072, beta=4.0, linear_beta=25.0, group_size=128), {"situ_and_mul_quant_group_pipelined_kernel"}),
    ("situ-other-d", _situ(2048, beta=4.0, linear_beta=25.0, group_size=128), {"situ_and_mul_quant_group_scalar_kernel"}),
    ("situ-default-betas", _situ(3072, group_size=128), {"situ_and_mul_quant_group_scalar_kernel"}),
    ("situ-default-group", _situ(3072, beta=4.0, linear_beta=25.0), set()),     # group_size=0 fails its check
    ("situ-no-tokens", _situ(3072, tokens=0, beta=4.0, linear_beta=25.0, group_size=128), set()),
    # dynamic_scaled_fp8_quant: flat absmax for packed rows of 16-element multiples on 16-element vectors
    ("fp8-dyn-flat", _fp8_dyn(_t("bfloat16", (8, 4096))), {"absmax_reduction_flat", _FP8_Q}),
    ("fp8-dyn-fp32-flat", _fp8_dyn(_t("float32", (8, 4096), offset=16)), {"absmax_reduction_flat", _FP8_Q}),
    ("fp8-dyn-fp32-half-vector", _fp8_dyn(_t("float32", (8, 4096), offset=8)), {"segmented_max_reduction_strided", _FP8_Q}),
    ("fp8-dyn-misaligned", _fp8_dyn(_t("bfloat16", (8, 4096), offset=8)), {"segmented_max_reduction_strided", _FP8_Q}),
    ("fp8-dyn-row-view", _fp8_dyn(_t("bfloat16", (8, 4096), stride=(6144, 1))), {"segmented_max_reduction_strided", _FP8_Q}),
    ("fp8-dyn-odd-hidden", _fp8_dyn(_t("bfloat16", (8, 4104))), {"segmented_max_reduction_strided", _FP8_Q}),
    ("fp8-dyn-column-view", _fp8_dyn(_t("bfloat16", (8, 4096), stride=(1, 8))), set()),
    # per_token_group_quant_int8 shares per_token_group_quant_8bit (CanUseRegisterPath)
    ("int8-group-register", _group_int8(_t("bfloat16", (8, 4096)), 128), {"per_token_group_quant_8bit_register_kernel"}),
    ("int8-group-64", _group_int8(_t("bfloat16", (8, 4096)), 64), {"per_token_group_quant_8bit_kernel"}),
    ("int8-group-fp32", _group_int8(_t("float32", (8, 4096)), 128), {"per_token_group_quant_8bit_kernel"}),
    ("fp8-norm-aligned", _fp8_norm(4096), {"fused_add_rms_norm_static_fp8_quant_kernel@vectorized"}),
    ("fp8-norm-odd-hidden", _fp8_norm(4100), {"fused_add_rms_norm_static_fp8_quant_kernel@generic"}),
    ("fp8-norm-misaligned", _fp8_norm(4096, offset=3), {"fused_add_rms_norm_static_fp8_quant_kernel@generic"}),
    ("fp8-norm-odd-stride", _fp8_norm(4096, stride=4100), {"fused_add_rms_norm_static_fp8_quant_kernel@generic"}),
]


@pytest.mark.parametrize(("case", "ev", "want"), CASES, ids=[c[0] for c in CASES])
def test_rule(case, ev, want):
    got = launched_kernels(ev)
    assert (None if got is None else set(got)) == want


@pytest.fixture(scope="module")
def index(vllm_tree):
    return build_index(vllm_tree)


def test_every_answer_is_a_kernel_of_the_op_and_every_kernel_is_reached(index):
    opmap = op_kernel_map(index)
    for op in sorted({ev.name for _, ev, _ in CASES}):
        kernels = {k.rsplit(":", 1)[-1].split("@", 1)[0] for k in opmap[op].kernels}
        answered = {n.split("@", 1)[0] for _, ev, want in CASES if ev.name == op for n in want or ()}
        assert answered == kernels, (op, answered - kernels, kernels - answered)


def test_fp8_norm_overloads_resolve_against_their_declarations(index):
    found = sorted((k for k in index.kernels if k.name == "fused_add_rms_norm_static_fp8_quant_kernel"),
                   key=lambda k: k.line)
    assert len(found) == 2, [k.qualified for k in found]
    vec, gen = found
    for ev, yes, no in ((_fp8_norm(4096), vec, gen), (_fp8_norm(4100), gen, vec)):
        assert call_launches(yes.qualified, ev, entry=yes, tree=index.tree) is True
        assert call_launches(no.qualified, ev, entry=no, tree=index.tree) is False
        assert call_launches(no.qualified, ev) is None      # no declaration to read: unknown
