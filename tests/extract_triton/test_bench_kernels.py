"""The benchmark Triton kernels extract, parse, import standalone and pass check_standalone."""
from __future__ import annotations

import ast
import json

import pytest

from vkc.extract.triton import check_standalone_many, extract_triton

from .conftest import BENCH_FIELDS, DATA, SHARED_BENCH, bench_kernels, entry_for

pytestmark = pytest.mark.sdist

FLA_CHUNK_O = {"name": "chunk_fwd_kernel_o", "qualname": "chunk_fwd_kernel_o", "line": 25,
               "file": "vllm/third_party/flash_linear_attention/ops/chunk_o.py"}
FAST = ["kernel_unified_attention", "kernel_paged_attention_2d", "fused_moe_kernel",
        "_selective_scan_update_kernel", "_per_token_quant_int8"]
GOLDEN = ["kernel_paged_attention_2d", "_per_token_quant_int8", "_selective_scan_update_kernel"]


def _by_name():
    return {k["name"]: k for k in bench_kernels()}


def _extract_all(tree, kernels):
    exs = [extract_triton(tree, entry_for(k)) for k in kernels]
    probs = check_standalone_many([(ex.source_code, ex.facts["entry_symbol"]) for ex in exs])
    return exs, probs


def _basic(ex):
    src = ex.source_code
    ast.parse(src)
    assert "@triton.jit" in src or "@gluon.jit" in src
    assert "vllm" not in "\n".join(ln for ln in src.splitlines() if ln.startswith(("import", "from")))
    for bad in ("__main__", "print(", "[grid]"):
        assert bad not in src
    assert ex.handoff.leaf_symbols[0] == ex.facts["entry_symbol"]
    assert ex.handoff.stride_semantics == "elements" and ex.handoff.smem_formula is None


@pytest.fixture(scope="module")
def fast(vllm_tree):
    ks = [_by_name()[n] for n in FAST] + [FLA_CHUNK_O]
    exs, probs = _extract_all(vllm_tree, ks)
    return {k["name"]: (ex, p) for k, ex, p in zip(ks, exs, probs)}


@pytest.mark.parametrize("name", FAST + ["chunk_fwd_kernel_o"])
def test_fast_kernels_standalone(fast, name):
    ex, problems = fast[name]
    _basic(ex)
    assert problems == []


def test_unified_attention_closure(fast):
    ex, _ = fast["kernel_unified_attention"]
    assert len(ex.handoff.leaf_symbols) == 16
    assert "vllm.v1.attention.ops.triton_attention_helpers" in ex.facts["closure_modules"]
    params = {p["name"]: p for p in ex.facts["params"]}
    assert params["FP8_MIN"]["default"] == "-448.0" and params["FP8_MAX"]["default"] == "448.0"
    assert params["FP8_MIN"]["constexpr"] and params["query_stride_0"]["annotation"] == "tl.int64"
    assert ex.handoff.arg_order[:2] == ("output_ptr", "query_ptr")
    assert any("FP8_MIN default" in n and "-448.0" in n for n in ex.handoff.notes)
    assert ex.facts["runtime_fallback"] is False


def test_platform_branches_pick_cuda(fast):
    ssm, _ = fast["_selective_scan_update_kernel"]
    assert "tl.math.log(tl.math.exp(dt) + 1)" in ssm.source_code   # TRITON3 softplus
    assert "log1p" not in ssm.source_code
    int8, _ = fast["_per_token_quant_int8"]
    assert "tl.extra.cuda.libdevice.round" in int8.source_code
    assert "hip" not in int8.source_code and "intel" not in int8.source_code
    assert any("round_int8" in n and "else branch" in n for n in int8.handoff.notes)


def test_fla_alias_and_autotune(fast):
    ex, _ = fast["chunk_fwd_kernel_o"]
    assert "\nexp = tl.exp\n" in ex.source_code
    assert ex.facts["autotuned"] and ex.facts["heuristics"]
    assert "check_shared_mem" not in ex.source_code and "triton.Config({" in ex.source_code
    assert "do_not_specialize" in ex.source_code


def test_deterministic(vllm_tree, fast):
    ex = extract_triton(vllm_tree, entry_for(_by_name()["fused_moe_kernel"]))
    assert ex.source_code == fast["fused_moe_kernel"][0].source_code


def test_handoff_grid_and_meta(vllm_tree):
    k = entry_for(_by_name()["_per_token_quant_int8"],
                  launch_text="_per_token_quant_int8[(M,)](x, x_q, x_s, stride, N, BLOCK=BLOCK, num_warps=num_warps, num_stages=1)")
    ex = extract_triton(vllm_tree, k)
    assert ex.handoff.grid_expr == "(M,)"
    assert ex.handoff.meta_params["num_stages"] == 1 and "num_warps" not in ex.handoff.meta_params
    assert "BLOCK" in ex.handoff.meta_params


@pytest.mark.parametrize("name", GOLDEN)
def test_golden(vllm_tree, name, golden):
    ex = extract_triton(vllm_tree, entry_for(_by_name()[name]))
    golden(DATA / "golden" / f"{name}.py", ex.source_code)


@pytest.mark.skipif(not SHARED_BENCH.is_file(), reason="no ../shared/bench/kernels.json beside the repository")
def test_bench_copy_matches_shared():
    """The copy in tests/data is the shared benchmark set's Triton list (the fields the tests use)."""
    shared = json.loads(SHARED_BENCH.read_text())["triton"]
    assert [{f: k[f] for f in BENCH_FIELDS} for k in shared] == [{f: k[f] for f in BENCH_FIELDS}
                                                                  for k in bench_kernels()]


def test_all_bench_kernels(vllm_tree):
    ks = bench_kernels()
    exs, probs = _extract_all(vllm_tree, ks)
    bad = {k["name"]: p for k, p in zip(ks, probs) if p}
    for ex in exs:
        _basic(ex)
    assert not bad, bad
