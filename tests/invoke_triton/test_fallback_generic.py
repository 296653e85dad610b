"""The generic (untraced) launch: static parameter typing, complete VKC_COMPILE, sm_90 compile."""
from __future__ import annotations

import ast
import json
import time
from pathlib import Path

import pytest

from vkc.invoke.triton.untraced.sigtypes import analyze
from vkc.verify.triton_compile import compile_artifact, read_literal

DATA = Path(__file__).parent.parent / "data" / "invoke_triton" / "fallback"

# kernels without a recipe (quick to extract), with parameter types the generic path must get right
# (awq: tl.dot(out_dtype=<a's element type>) rejects bf16, so the probe settles on float16)
CASES = {
    "vllm.model_executor.layers.quantization.awq_triton:awq_gemm_kernel":
        {"a_ptr": "*fp16", "b_ptr": "*i32", "zeros_ptr": "*i32", "M": "i32"},
    "vllm.model_executor.layers.fused_qk_norm_rope:_fused_qk_rmsnorm_rope_gate_kernel":
        {"q_out_ptr": "*bf16", "k_out_ptr": "*bf16", "positions_ptr": "*i32"},
    "vllm.model_executor.layers.lightning_attn:_fwd_kv_reduce":
        {"S": "*bf16", "KV": "*bf16", "KV_HISTORY": "*bf16", "n": "i32"},
    "vllm.v1.worker.utils:_zero_kv_blocks_kernel": {"seg_addrs_ptr": "*i64", "block_ids_ptr": "*i32"},
}
_done: dict = {}


def _generic(vllm_tree, qualified: str):
    if qualified not in _done:
        from vkc.extract import extract
        from vkc.index import build_index, lookup
        from vkc.invoke import invoke
        from vkc.modelcfg import DEFAULT_MODEL, load_model

        kernel = lookup(build_index(vllm_tree), qualified)
        ex = extract(vllm_tree, kernel, name=qualified)
        inv = invoke(vllm_tree, ex, load_model(DEFAULT_MODEL), None, command=f"vkc {qualified}", name=qualified)
        _done[qualified] = (ex, inv)
    return _done[qualified]


def test_static_typing_of_a_synthetic_kernel():
    expected = json.loads((DATA / "typed_kernel.expected.json").read_text())
    params = analyze((DATA / "typed_kernel.py").read_text(), "typed_kernel")
    got = {}
    for p in params:
        if p.kind == "constexpr":
            tag = ("pow2" if p.pow2 else "flag" if p.flag else "dtype" if p.dtype_cx else
                   f"compared:{p.compared[0]}" if p.compared else None)
            got[p.name] = ["constexpr", tag]
        else:
            got[p.name] = [p.kind, p.dtype]
    assert got == expected


@pytest.mark.parametrize("qualified", sorted(CASES))
def test_generic_signature_is_complete(vllm_tree, qualified):
    ex, inv = _generic(vllm_tree, qualified)
    ast.parse(inv.code)
    assert inv.facts["traced"] is False and inv.facts["generic"] is True
    assert "generic (untraced): inputs synthesised from the kernel signature; grid from vllm/" in inv.header
    spec = read_literal(inv.code, "VKC_COMPILE")
    params = [p["name"] for p in ex.facts["params"]]
    sig = spec["signature"]
    assert list(sig) == params                        # every parameter, in order
    for p, t in sig.items():
        assert t == "constexpr" or t.lstrip("*") in ("bf16", "fp16", "fp32", "i1", "i8", "i32", "i64"), (p, t)
        assert (t == "constexpr") == (p in spec["constexprs"])
    for p, want in CASES[qualified].items():
        assert sig[p] == want, p
    configs = read_literal(inv.code, "CONFIGS")
    assert configs == inv.facts["plan"].to_literal()     # the script's literal is the typed plan's rendering
    cfg = configs["FULL"]
    runtime = [a for a, _ in cfg["args"]]
    assert sorted(runtime + list(cfg["constexprs"])) == sorted(params)   # each parameter exactly once
    assert all(isinstance(g, int) and g >= 1 for g in cfg["grid"])


def test_generic_artifact_compiles_for_sm90(vllm_tree):
    ex, inv = _generic(vllm_tree, "vllm.model_executor.layers.quantization.awq_triton:awq_gemm_kernel")
    art = {"name": "awq_gemm_kernel", "kernel": {"kernel_type": "triton", "source_code": ex.source_code,
                                                 "invocation_example": inv.code}}
    t0 = time.time()
    res = compile_artifact("awq_gemm_kernel.json", art)
    assert res[0].ok, res[0].reason
    assert time.time() - t0 < 60
