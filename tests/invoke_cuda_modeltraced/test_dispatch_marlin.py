"""Which Marlin kernel a traced ``_C::marlin_gemm`` / ``_moe_C::moe_wna16_marlin_gemm`` call launches.

On the H100 (SM 9.0) it is the real ``Marlin`` of the ``marlin_template.h`` next to the host file, never
the pre-Turing stub (``#if __CUDA_ARCH__ < 750``) and never the ``MarlinDefault`` sentinel (the host
fails its "Unsupported shapes" check instead of launching it); ``size_m == 0`` returns before any launch
and FP8 activations fail the SM 8.9 / 12.x check.
"""
from __future__ import annotations

import pytest
from dispatch_events import op_event, tensor

from vkc.index import build_index
from vkc.invoke.cuda.modeltraced import call_launches, launched_kernels
from vkc.modeltrace.records import ScalarArg, TracedEvent

_t, _ev = tensor, op_event
_DIRS = {"_C::marlin_gemm": "csrc/quantization/marlin/", "_moe_C::moe_wna16_marlin_gemm": "csrc/moe/marlin_moe_wna16/"}


def _dense(m: int, *, dtype: str = "bfloat16") -> TracedEvent:
    # Llama-3.1-8B q/k/v at MXFP4: k 4096, n 6144, group 32 (e8m0 scales)
    return _ev("_C::marlin_gemm", a=_t(dtype, (m, 4096)), c=ScalarArg(None), b_q_weight=_t("int32", (256, 6144 * 2)),
               b_bias=ScalarArg(None), b_scales=_t("uint8", (128, 6144)), a_scales=ScalarArg(None),
               global_scale=ScalarArg(None), b_zeros=ScalarArg(None), workspace=_t("int32", (528,)),
               b_q_type=0, size_m=m, size_n=6144, size_k=4096, use_atomic_add=False, use_fp32_reduce=True,
               is_zp_float=False)


def _moe(m: int, *, dtype: str = "bfloat16") -> TracedEvent:
    return _ev("_moe_C::moe_wna16_marlin_gemm", a=_t(dtype, (m, 2880)), c=_t(dtype, (m * 4, 5760)),
               b_q_weight=_t("int32", (128, 180, 11520)), b_scales=_t("uint8", (128, 90, 5760)),
               workspace=_t("int32", (528,)), sorted_token_ids=_t("int32", (1024,)),
               expert_ids=_t("int32", (64,)), num_tokens_past_padded=_t("int32", (1,)),
               topk_weights=_t("float32", (m, 4)), moe_block_size=16, top_k=4, mul_topk_weights=False,
               b_q_type=0, size_m=m, size_n=5760, size_k=2880)


CASES: list[tuple[str, TracedEvent, set[str] | None]] = [
    ("dense-decode", _dense(64), {"Marlin@device"}),
    ("dense-prefill", _dense(8192), {"Marlin@device"}),
    ("dense-fp16", _dense(1, dtype="float16"), {"Marlin@device"}),
    ("dense-no-rows", _dense(0), set()),
    ("dense-fp8-activation", _dense(64, dtype="float8_e4m3fn"), set()),
    ("dense-no-size-m", _ev("_C::marlin_gemm", a=_t("bfloat16", (4, 4096))), None),
    ("moe-decode", _moe(64), {"Marlin@device"}),
    ("moe-no-rows", _moe(0), set()),
    ("moe-fp8-activation", _moe(64, dtype="float8_e4m3fn"), set()),
]


@pytest.mark.parametrize(("case", "ev", "want"), CASES, ids=[c[0] for c in CASES])
def test_rule(case, ev, want):
    got = launched_kernels(ev)
    assert (None if got is None else set(got)) == want


def test_the_real_kernel_not_the_stub_nor_the_sentinel(vllm_tree):
    index = build_index(vllm_tree)
    for op, ev in (("_C::marlin_gemm", _dense(64)), ("_moe_C::moe_wna16_marlin_gemm", _moe(64))):
        marlins = sorted((k for k in index.kernels if k.name == "Marlin" and k.file.startswith(_DIRS[op])),
                         key=lambda k: k.line)
        assert len(marlins) == 2, [k.qualified for k in marlins]
        stub, real = marlins
        assert call_launches(real.qualified, ev, entry=real, tree=index.tree) is True
        assert call_launches(stub.qualified, ev, entry=stub, tree=index.tree) is False
        assert call_launches(stub.qualified, ev) is None      # without the definition: unknown
        default = next(k for k in index.kernels if k.name == "MarlinDefault" and k.file.startswith(_DIRS[op]))
        assert call_launches(default.qualified, ev, entry=default, tree=index.tree) is False
        assert call_launches(real.qualified, _dense(0) if op == "_C::marlin_gemm" else _moe(0),
                             entry=real, tree=index.tree) is False


def test_every_marlin_kernel_of_the_op_map_is_named(vllm_tree):
    from vkc.invoke.cuda.modeltraced import op_kernel_map

    opmap = op_kernel_map(build_index(vllm_tree))
    for op, d in _DIRS.items():
        names = {k.rsplit(":", 1)[-1].split("@", 1)[0] for k in opmap[op].kernels}
        assert names == {"Marlin", "MarlinDefault"}, (op, opmap[op].kernels)
        assert all(k.startswith(d) for k in opmap[op].kernels), opmap[op].kernels

