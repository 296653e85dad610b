"""The sampler runs on every step, the rejection sampler only where drafts exist (decode)."""
from __future__ import annotations

import pytest

from vkc.errors import NotApplicableError
from vkc.invoke.core.policy import choose_workload
from vkc.invoke.core.registry import registry

TOPK = "vllm.v1.sample.ops.topk_topp_triton:_topk_topp_kernel"
REJ = "vllm.v1.sample.rejection_sampler:rejection_random_sample_kernel"
MODEL = {"vocab_size": 151936}


def test_topk_topp_is_sampled_at_prefill_one_row_per_prompt():
    recipe = registry("triton").find(TOPK)
    assert recipe is not None and choose_workload("prefill", recipe, TOPK) == ("prefill", "given")
    shp = recipe.plan.shapes(MODEL, "prefill", 1 << 34, False)
    assert shp["batch"] == 4 and "prefill step of 4 prompts" in shp["notes"][0]
    assert recipe.plan.shapes(MODEL, "decode", 1 << 34, False)["batch"] == 256


def test_rejection_sampling_stays_decode_only():
    recipe = registry("triton").find(REJ)
    assert recipe is not None
    with pytest.raises(NotApplicableError, match="not used for prefill"):
        choose_workload("prefill", recipe, REJ)
