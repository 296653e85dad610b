"""The recipe interface: registry, recipe records, sizing policy (pure Python, fast)."""
from __future__ import annotations

import math

import pytest

from invoke_triton.fixtures import model
from vkc.invoke.common import BUDGET_MAX, BUDGET_MIN, budget_bytes
from vkc.invoke.core.dims import ModelDims, Need
from vkc.invoke.core.family import Family
from vkc.invoke.core.recipe import Recipe
from vkc.invoke.core.registry import registry
from vkc.invoke.triton.recipes import get_recipe
from vkc.invoke.triton.recipes.base import TritonRecipe, normalize_init

MERGE = "vllm.v1.attention.ops.triton_merge_attn_states:merge_attn_states_kernel"
RESHAPE = "vllm.v1.attention.ops.triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash"
PAGED = {   # kernels whose shapes describe a paged KV cache: ctx, block size (or page), blocks
    "vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention",
    "vllm.v1.attention.ops.triton_unified_attention:reduce_segments",
    "vllm.v1.attention.ops.chunked_prefill_paged_decode:kernel_paged_attention_2d",
    "vllm.v1.attention.ops.prefix_prefill:_fwd_kernel",
    "vllm.v1.attention.ops.triton_decode_attention:_fwd_grouped_kernel_stage1",
}
ATTN = PAGED | {MERGE, RESHAPE}
MODELS = ["openai/gpt-oss-120b", "meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-Coder-480B-A35B-Instruct",
          "deepseek-ai/DeepSeek-V3"]


def _dims(model_id: str) -> dict:
    return ModelDims.from_config(model(model_id)).recipe_dict()


def test_registry_serves_attention_kernels():
    reg = registry("triton")
    assert set(reg.kernels()) >= ATTN
    for q in ATTN:
        r = get_recipe(q)
        assert isinstance(r, Recipe) and r.lang == "triton" and r.family is Family.ATTENTION
        assert r.default_workload in r.workloads and Need.ATTENTION in r.needs
        assert isinstance(r.plan, TritonRecipe) and callable(r.plan.shapes) and callable(r.plan.call)
        assert "vkc.invoke.triton.recipes._attn" in r.helpers      # its source feeds the trace-cache key
    assert get_recipe("vllm.nowhere:nothing") is None


def test_every_recipe_record_is_well_formed():
    reg = registry("triton")
    for r in reg.recipes():
        assert r.module and r.kernels and all(":" in k for k in r.kernels), r
        assert isinstance(r.family, Family) and r.plan.platform in ("h100", "generic")
        for k in r.kernels:
            assert reg.find(k) is r


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


def _itemsize(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


def _live_estimate(qualified: str, shp: dict) -> int:
    """A rough live set of the FULL launch (the dominant buffers), per kind of attention kernel."""
    it = _itemsize(shp["dtype"])
    if qualified == MERGE:        # 3 outputs [T, H_q, Dv] + 3 LSEs [H_q, T] (fp32)
        return 3 * shp["tokens"] * shp["H_q"] * shp["Dv"] * it + 3 * shp["H_q"] * shp["tokens"] * 4
    if qualified == RESHAPE:      # key/value [T, H_kv, D] and the paged caches
        return 2 * shp["tokens"] * shp["H_kv"] * shp["D"] * it
    page = shp.get("block_size", shp.get("page"))
    per_token = shp["Lk"] * it if shp.get("mla") and "Lk" in shp else 2 * shp["H_kv"] * shp["D"] * it
    return shp["num_blocks"] * page * per_token    # the KV cache dominates


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("qualified", sorted(ATTN))
def test_shapes_fit_budget_and_context(qualified, model_id):
    plan = get_recipe(qualified).plan
    dims = _dims(model_id)
    for wl in get_recipe(qualified).workloads:
        full = plan.shapes(dims, wl, budget_bytes(), False)
        small = plan.shapes(dims, wl, budget_bytes(), True)
        for shp in (full, small):
            assert shp["workload"] == wl and shp["dtype"] in ("bfloat16", "float16", "float32")
            if qualified in PAGED:   # these keys must be there: a missing one fails the test
                page = shp.get("block_size", shp.get("page"))
                assert page and shp["ctx"] <= dims["max_position_embeddings"]
                assert shp["num_blocks"] * page >= shp["ctx"]
            else:
                assert shp["tokens"] >= 1
        assert _live_estimate(qualified, full) <= 1.05 * BUDGET_MAX, (wl, _live_estimate(qualified, full))
        assert _live_estimate(qualified, small) < 16 << 20                # SMALL_SANITY: a few MiB at most
        assert math.prod([small.get("batch", 1), small.get("ctx", 1)]) < 4096
