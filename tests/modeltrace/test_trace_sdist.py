"""vLLM 0.33.0's own model classes traced on meta tensors (one worker process per model)."""
from __future__ import annotations

import pytest

from .conftest import DECODE, PREFILL

pytestmark = [pytest.mark.sdist, pytest.mark.heavy]  # real vLLM traces in worker subprocesses

ATTN = "vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention"
CACHE = "vllm.v1.attention.ops.triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash"
MOE = "vllm.model_executor.layers.fused_moe.fused_moe:fused_moe_kernel"


def _names(step, layer=None):
    return [e.name for e in step.events if e.kind != "vllm_op" and (layer is None or e.layer == layer)]


def test_llama_decode_layer_sequence(llama_trace):
    step = llama_trace.step(DECODE)
    assert _names(step, 1) == ["_C::fused_add_rms_norm", "aten::mm", "_C::rotary_embedding", CACHE, ATTN,
                               "aten::mm", "_C::fused_add_rms_norm", "aten::mm", "_C::silu_and_mul", "aten::mm"]
    attn = next(e for e in step.events if e.name == ATTN and e.layer == 0)
    assert attn.grid == (80, 8)
    assert attn.constexprs["BLOCK_Q"] == 4
    q = dict(attn.args)["query_ptr"]
    assert q.shape == (64, 32, 128) and q.dtype == "bfloat16"
    assert q.producer.startswith("event:")      # the rotary op wrote it
    assert dict(attn.args)["block_tables_ptr"].producer == "metadata:block_table_tensor"
    assert dict(attn.args)["key_cache_ptr"].producer.startswith("kv_cache:")
    assert llama_trace.layer_weights == {0: 1.0, 1: 31.0}
    assert llama_trace.fingerprint_status == "known"


def test_llama_prefill_grid(llama_trace):
    step = llama_trace.step(PREFILL)
    attn = next(e for e in step.events if e.name == ATTN)
    assert attn.grid == (2052, 8)
    assert step.num_tokens == 8192


def test_rms_norm_takes_the_vllm_op_not_the_native_path(llama_trace):
    """The silent fallback: without WorkerBase.__init__'s IR op priority RMSNorm runs native torch."""
    step = llama_trace.step(DECODE)
    names = _names(step)
    assert "_C::rms_norm" in names and "_C::fused_add_rms_norm" in names
    in_norms = [e for e in step.events if (e.module or "").endswith(("layernorm", ".norm"))]
    assert in_norms and all(e.kind == "op" for e in in_norms), sorted({e.name for e in in_norms})
    assert not any(n in names for n in ("aten::pow", "aten::rsqrt", "aten::mean"))
    assert not [w for w in llama_trace.warnings if "RMSNorm" in w]


def test_qwen3_moe_kernels(qwen_moe_trace):
    step = qwen_moe_trace.step(DECODE)
    names = _names(step, 1)
    for n in ("_moe_C::topk_softmax", "_moe_C::moe_align_block_size", "_moe_C::moe_sum", "_C::silu_and_mul"):
        assert n in names
    moe = [e for e in step.events if e.name == MOE and e.layer == 1]
    assert len(moe) == 2                          # up (gate_up) and down projections
    assert moe[0].grid != moe[1].grid
    assert names.count("_C::rms_norm") == 2       # q_norm and k_norm
    assert qwen_moe_trace.layer_weights[1] == 47.0


@pytest.mark.slow
def test_worker_reports_rms_norm_without_the_ir_op_priority(vllm_tree):
    """Skipping WorkerBase.__init__'s IR op priority: no error from vLLM, native norms; the
    worker itself must say so."""
    from vkc.modelcfg.fetch import fetch_config
    from vkc.modeltrace.layers import plan_layers
    from vkc.modeltrace.records import TraceOptions
    from vkc.modeltrace.trace import _run_worker

    plan = plan_layers(fetch_config("meta-llama/Llama-3.1-8B-Instruct").config)
    resp = _run_worker(vllm_tree, plan, TraceOptions((DECODE,)), skip_steps=("ir-op-priority",))
    names = {e["name"] for e in resp["steps"][0]["events"]}
    assert "_C::rms_norm" not in names and "_C::fused_add_rms_norm" not in names
    assert any("RMSNorm" in w and "native torch path" in w for w in resp["warnings"])


def test_fused_moe_flops_count_the_routed_tokens(qwen_moe_trace):
    from vkc.modeltrace.cost import event_cost

    step = qwen_moe_trace.step(DECODE)
    up, down = [e for e in step.events if e.name == MOE and e.layer == 1]
    # 64 tokens x top-8 through [128 experts, 2 x 768, 2048] and back through [128, 2048, 768]
    assert event_cost(up, DECODE, step.num_tokens).flops == 2 * 64 * 8 * 1536 * 2048
    assert event_cost(down, DECODE, step.num_tokens).flops == 2 * 64 * 8 * 2048 * 768
