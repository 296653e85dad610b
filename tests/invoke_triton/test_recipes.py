"""The recipe interface: registry, required names, sizing policy (pure Python, fast)."""
from __future__ import annotations

import math

import pytest

from invoke_triton.fixtures import model
from vkc.invoke.common import BUDGET_MAX, BUDGET_MIN, budget_bytes, model_dims
from vkc.invoke.triton.recipes import get_recipe, registry
from vkc.invoke.triton.recipes.base import normalize_init

ATTN = {
    "vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention",
    "vllm.v1.attention.ops.triton_unified_attention:reduce_segments",
    "vllm.v1.attention.ops.chunked_prefill_paged_decode:kernel_paged_attention_2d",
    "vllm.v1.attention.ops.prefix_prefill:_fwd_kernel",
    "vllm.v1.attention.ops.triton_decode_attention:_fwd_grouped_kernel_stage1",
    "vllm.v1.attention.ops.triton_merge_attn_states:merge_attn_states_kernel",
    "vllm.v1.attention.ops.triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash",
}
MODELS = ["openai/gpt-oss-120b", "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-Coder-480B-A35B-Instruct",
          "deepseek-ai/DeepSeek-V3"]


def test_registry_serves_attention_kernels():
    reg = registry()
    assert ATTN <= set(reg)
    for q in ATTN:
        r = get_recipe(q)
        assert r.DEFAULT_WORKLOAD in r.WORKLOADS and r.FAMILY and callable(r.shapes) and callable(r.call)
    assert get_recipe("vllm.nowhere:nothing") is None


def test_budget_policy():
    assert budget_bytes() == BUDGET_MAX                 # H100: 20% of ~79 GiB, clamped to 8 GiB
    assert budget_bytes(4 << 30) == BUDGET_MIN          # 20% of 4 GiB -> clamped up to 2 GiB
    assert budget_bytes(20 << 30) == int(0.2 * (20 << 30))


def test_init_specs_validated():
    assert normalize_init("randn") == ("randn",)
    assert normalize_init(("block_table", 8)) == ("block_table", 8)
    with pytest.raises(ValueError):
        normalize_init("gaussian")
    with pytest.raises(ValueError):
        normalize_init(("arange", 0))


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("qualified", sorted(ATTN))
def test_shapes_fit_budget_and_context(qualified, model_id):
    r = get_recipe(qualified)
    dims = model_dims(model(model_id))
    for wl in r.WORKLOADS:
        full = r.shapes(dims, wl, budget_bytes(), False)
        small = r.shapes(dims, wl, budget_bytes(), True)
        for shp in (full, small):
            assert shp.get("ctx", 0) <= dims["max_position_embeddings"]
            if "block_size" in shp and "ctx" in shp:
                assert shp["num_blocks"] * shp["block_size"] >= shp["ctx"]
        # a rough live-set estimate (KV cache dominates) stays within the 8 GiB budget (+5%)
        if "num_blocks" in full and "block_size" in full:
            kv = full["num_blocks"] * full["block_size"] * 2 * full["H_kv"] * full["D"] * 2
            assert kv <= 1.05 * BUDGET_MAX
        assert math.prod([small.get("batch", 1), small.get("ctx", 1)]) < 4096
