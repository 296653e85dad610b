"""Launch tracing through vLLM's real wrappers (fake H100, meta tensors)."""
from __future__ import annotations

import pytest

from vkc.errors import NotApplicableError
from vkc.invoke.triton.plan import Scalar, TensorView, TritonPlan
from vkc.verify.triton_compile import read_literal

pytestmark = pytest.mark.sdist


def test_paged_attention_2d_gpt_oss_decode(invocation):
    _, inv = invocation("kernel_paged_attention_2d", "openai/gpt-oss-120b", None)
    plan: TritonPlan = inv.facts["plan"]
    assert inv.facts["traced"] is True and plan.path == "traced" and inv.workload == "decode"
    full = plan.full
    c = full.constexprs
    assert c["SLIDING_WINDOW"] == 128 and c["USE_SINKS"] is True
    assert c["HEAD_SIZE"] == 64 and c["HEAD_SIZE_PADDED"] == 64
    assert c["num_queries_per_kv"] == 8 and c["num_query_heads"] == 64 and c["num_queries_per_kv_padded"] == 16
    assert c["x"] == 8 and c["BLOCK_SIZE"] == 16 and c["USE_FP8"] is False
    batch = full.shapes["batch"]
    assert full.grid == (batch, 8)                          # (num_seqs, num_kv_heads)
    sink = full.arg("sink_ptr")
    assert isinstance(sink, TensorView) and sink.shape == (64,) and full.buffer(sink.base).dtype == "float32"
    key = full.arg("key_cache_ptr")
    assert isinstance(key, TensorView) and key.shape[1:] == (8, 8, 16, 8)   # 5-D [blocks, H_kv, D/x, block, x]
    assert full.arg("scale") == Scalar("scale", 0.125)
    assert full.live_bytes <= 8.1 * 2**30
    assert plan.launch is not None and plan.launch.site is not None and plan.launch.count == 1
    # the CONFIGS literal is the plan's rendering (the script's format: positional tuples)
    assert read_literal(inv.code, "CONFIGS") == plan.to_literal()
    assert plan.to_literal()["FULL"]["args"][0] == ("output_ptr", ("tensor", "output", [64, 64, 64], [4096, 64, 1], 0,
                                                                   "bfloat16"))
    assert inv.facts["launch_site"]["file"].endswith("chunked_prefill_paged_decode.py")
    h = inv.handoff
    assert "(64, 8)" in h.grid_expr.replace(str(batch), "64") and h.guards["sliding_window"] == 128
    assert h.guards["sinks"] is True and h.meta_params["num_warps"] == 4
    assert any("fake H100" in n for n in h.notes)


def test_unified_attention_llama_prefill(invocation):
    _, inv = invocation("kernel_unified_attention", "meta-llama/Llama-3.1-8B-Instruct", "prefill")
    full = inv.facts["plan"].full
    c, shp = full.constexprs, full.shapes
    assert c["IS_3D"] is False and c["HEAD_SIZE"] == 128 and c["num_queries_per_kv"] == 4
    assert c["BLOCK_M"] == 16 and c["BLOCK_Q"] == 4 and c["TILE_SIZE"] == 32
    assert c["SLIDING_WINDOW"] == 0 and c["USE_SINKS"] is False and c["USE_CAUSAL"] is True
    tokens = shp["batch"] * shp["q_len"]
    assert full.grid == (tokens // 4 + shp["batch"], 8)   # q.shape[0] // BLOCK_Q + num_seqs, H_kv
    small = inv.facts["plan"].small
    assert small.constexprs["IS_3D"] is False and small.grid[1] == 8


def test_unified_attention_gpt_oss_decode_takes_3d_path(invocation):
    _, inv = invocation("reduce_segments", "openai/gpt-oss-120b", None)
    full = inv.facts["plan"].full
    # 16 single-token seqs: grid (16 // BLOCK_Q + 16, H_kv, segments) and reduce over (tokens, H_q)
    assert full.grid == (16, 64) and full.constexprs["NUM_SEGMENTS_PER_SEQ"] == 16
    assert any("kernel_unified_attention[24, 8, 16]" in n for n in inv.handoff.notes)


def test_generated_script_parses_and_embeds_compile_literal(invocation):
    import ast

    _, inv = invocation("kernel_paged_attention_2d", "openai/gpt-oss-120b", None)
    ast.parse(inv.code)
    lit = read_literal(inv.code, "VKC_COMPILE")
    assert lit["entry"] == "kernel_paged_attention_2d" and lit["target"] == ("cuda", 90, 32)
    assert list(lit["signature"])[:2] == ["output_ptr", "query_ptr"]       # parameter order kept
    assert lit["signature"]["alibi_slopes_ptr"] == "constexpr" and lit["constexprs"]["alibi_slopes_ptr"] is None
    assert read_literal(inv.code, "KERNEL_FILE") == "kernel_paged_attention_2d.py"
    head = inv.header
    assert "MODEL_NAME: openai/gpt-oss-120b" in head and "https://huggingface.co/openai/gpt-oss-120b" in head
    assert "WORKLOAD: decode (inferred" in head and "sliding_window=128" in head and "sinks" in head
    assert "vkc kernel_paged_attention_2d --model openai/gpt-oss-120b" in head
    assert inv.code.startswith(head)


def test_unsupported_workload_is_not_applicable(vllm_tree):
    from invoke_triton.fixtures import load_extraction, model
    from vkc.invoke.triton import invoke_triton

    with pytest.raises(NotApplicableError) as e:
        invoke_triton(vllm_tree, load_extraction("kernel_paged_attention_2d"), model("openai/gpt-oss-120b"),
                      "prefill", command="x")
    assert e.value.exit_code == 12 and "--workload decode" in (e.value.hint or "")


def test_untraced_fallback_without_recipe(vllm_tree):
    import ast
    import dataclasses

    from invoke_triton.fixtures import load_extraction, model
    from vkc.invoke.triton import invoke_triton

    ex = load_extraction("merge_attn_states_kernel")
    k = dataclasses.replace(ex.kernel, qualified="vllm.somewhere_else:merge_attn_states_kernel",
                            module="vllm.somewhere_else")
    ex = dataclasses.replace(ex, kernel=k)
    inv = invoke_triton(vllm_tree, ex, model("meta-llama/Llama-3.1-8B-Instruct"), None, command="x")
    assert inv.facts["traced"] is False and inv.facts["path"] == "generic"
    assert "UNTRACED" in inv.header and "# from vllm/v1/attention/ops/triton_merge_attn_states.py:48" in inv.header
    ast.parse(inv.code)
    full = inv.facts["plan"].full
    assert isinstance(full.arg("output"), TensorView) and isinstance(full.arg("prefix_head_stride"), Scalar)
    assert any("no workload recipe" in n for n in inv.handoff.notes)
