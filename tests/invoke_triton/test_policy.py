"""The Triton half's policy: a failing recipe is a reported error, never a silent generic example;
needs and workloads are exit 12 before any trace starts (fast: no trace worker runs)."""
from __future__ import annotations

import dataclasses

import pytest

from invoke_triton.fixtures import load_extraction, model
from vkc.errors import InvocationError, NotApplicableError
from vkc.invoke.core.family import Family
from vkc.invoke.triton import invoker
from vkc.invoke.triton.recipes import get_recipe
from vkc.invoke.triton.recipes.base import triton_recipe
from vkc.invoke.triton.traced import planner
from vkc.records import SourceTree

MERGE = "vllm.v1.attention.ops.triton_merge_attn_states:merge_attn_states_kernel"
FUSED_MOE = "vllm.model_executor.layers.fused_moe.fused_moe:fused_moe_kernel"


def _never(*_a, **_k):
    raise AssertionError("the trace worker must not run")


def _broken_shapes(model, workload, budget, small):
    raise ValueError("cannot size this")


def _recipe(shapes):
    r = triton_recipe((MERGE,), Family.ATTENTION, shapes, _never, default_workload="prefill")
    return dataclasses.replace(r, module="broken")


def _tree() -> SourceTree:
    return SourceTree(root="/nonexistent", version="0.33.0", origin="test", sha256="0" * 64)


def test_recipe_that_cannot_size_is_a_reported_failure(monkeypatch):
    monkeypatch.setattr(invoker, "get_recipe", lambda q: _recipe(_broken_shapes))
    monkeypatch.setattr(planner, "run_trace", _never)
    with pytest.raises(InvocationError) as e:
        invoker.invoke_triton(_tree(), load_extraction("merge_attn_states_kernel"),
                              model("meta-llama/Llama-3.1-8B-Instruct"), None, command="x")
    assert type(e.value) is InvocationError and e.value.exit_code == 9
    assert "recipe broken cannot size FULL" in e.value.message and "cannot size this" in e.value.message


@pytest.mark.parametrize("job,cls", [
    ({"id": "FULL", "ok": False, "error": "RuntimeError: boom", "error_class": "RuntimeError"}, InvocationError),
    ({"id": "FULL", "ok": False, "error": "NotApplicableError: no", "error_class": "NotApplicableError",
      "error_message": "not for this model (hint: use another)"}, NotApplicableError),
])
def test_wrapper_failure_is_reported(monkeypatch, job, cls):
    recipe = _recipe(lambda m, w, b, s: {"tokens": 1})
    monkeypatch.setattr(planner, "run_trace", lambda tree, jobs, helpers=(): {"ok": True, "jobs": [job]})
    ex = load_extraction("merge_attn_states_kernel")
    with pytest.raises(cls) as e:
        planner.traced_plan(_tree(), ex.kernel, MERGE, recipe, {}, "prefill")
    assert type(e.value) is cls
    if cls is InvocationError:
        assert "recipe broken" in e.value.message and "boom" in e.value.message
    else:
        assert e.value.exit_code == 12 and "not for this model" in str(e.value)


def test_worker_crash_is_reported(monkeypatch):
    recipe = _recipe(lambda m, w, b, s: {"tokens": 1})
    monkeypatch.setattr(planner, "run_trace", lambda tree, jobs, helpers=(): {"ok": False, "error": "exited 1"})
    with pytest.raises(InvocationError, match="recipe broken: the trace worker failed: exited 1"):
        planner.traced_plan(_tree(), load_extraction("merge_attn_states_kernel").kernel, MERGE, recipe, {}, "prefill")


def test_unsupported_workload_is_exit_12_before_tracing(monkeypatch):
    monkeypatch.setattr(planner, "run_trace", _never)
    ex = load_extraction("kernel_paged_attention_2d")      # its wrapper runs decode only
    with pytest.raises(NotApplicableError) as e:
        invoker.invoke_triton(_tree(), ex, model("openai/gpt-oss-120b"), "prefill", command="x")
    assert e.value.exit_code == 12 and "decode" in (e.value.hint or "")


def test_needs_are_checked_before_tracing(monkeypatch):
    """fused_moe needs a MoE model: a dense one is exit 12 without starting the trace worker."""
    monkeypatch.setattr(planner, "run_trace", _never)
    ex = load_extraction("merge_attn_states_kernel")
    k = dataclasses.replace(ex.kernel, qualified=FUSED_MOE, module=FUSED_MOE.split(":")[0], qualname="fused_moe_kernel")
    with pytest.raises(NotApplicableError) as e:
        invoker.invoke_triton(_tree(), dataclasses.replace(ex, kernel=k), model("meta-llama/Llama-3.1-8B-Instruct"),
                              None, command="x")
    assert e.value.exit_code == 12 and "has no experts" in e.value.message
    assert get_recipe(FUSED_MOE).needs


def test_fused_qkv_norm_refuses_non_mla_models_before_tracing():
    from vkc.invoke.core.dims import ModelDims

    recipe = get_recipe("vllm.models.common.ops.fused_qk_rmsnorm:FusedQKVRMSNormKernel.kernel")
    dims = ModelDims.from_config(model("meta-llama/Llama-3.1-8B-Instruct")).recipe_dict()
    with pytest.raises(NotApplicableError, match="no MLA q LoRA"):
        recipe.plan.shapes(dims, "prefill", 1 << 33, False)
