"""Golden tables from a recorded trace (tests/data/modeltrace/*.trace.json): no vLLM, no worker.

The fixture is a ``vkc model kernels`` cache file of Llama-3.1-8B-Instruct (2 of 32 layers traced);
``VKC_UPDATE_GOLDEN=1`` rewrites the golden outputs (not the fixture)."""
from __future__ import annotations

import json
from pathlib import Path

from vkc.modeltrace.cost import event_cost
from vkc.modeltrace.records import StepSpec, trace_from_json, trace_to_json
from vkc.modeltrace.render import kernel_rows, render_json, render_table

DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"
FIXTURE = DATA / "llama-3.1-8b-instruct.trace.json"
DECODE = StepSpec("decode", 64, ctx=4096)
PREFILL = StepSpec("prefill", 4, prompt_len=2048)


def _trace():
    return trace_from_json(json.loads(FIXTURE.read_text()))


def test_fixture_round_trips():
    d = json.loads(FIXTURE.read_text())
    assert json.loads(json.dumps(trace_to_json(trace_from_json(d)), sort_keys=True)) == json.loads(json.dumps(d, sort_keys=True))


def test_decode_table_golden(golden):
    golden(DATA / "llama-3.1-8b-instruct.decode.txt", render_table(_trace(), DECODE, width=220))


def test_prefill_json_golden(golden):
    golden(DATA / "llama-3.1-8b-instruct.prefill.json", render_json(_trace(), PREFILL))


def test_calls_scale_to_the_full_model():
    rows = kernel_rows(_trace(), DECODE)
    calls = {}
    for r in rows:
        calls[r.name] = calls.get(r.name, 0) + r.calls
    assert calls["_C::rms_norm"] == 1
    assert calls["_C::fused_add_rms_norm"] == 31 + 32 + 1   # input norms of layers 1.., post-attention, final
    assert calls["vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention"] == 32
    assert abs(sum(r.share for r in rows) - 1.0) < 1e-9


def test_gemm_flops_and_attention_bytes():
    t = _trace()
    step = t.step(DECODE)
    qkv = next(e for e in step.events if e.module == "model.layers.0.self_attn.qkv_proj")
    c = event_cost(qkv, DECODE, step.num_tokens)
    assert c.flops == 2 * 64 * 4096 * 6144
    attn = next(e for e in step.events if e.name.endswith("kernel_unified_attention"))
    # K and V of 64 sequences x 4096 tokens x 8 heads x 128 x bf16, plus q/out/metadata
    assert event_cost(attn, DECODE, step.num_tokens).bytes >= 2 * 64 * 4096 * 8 * 128 * 2


def test_external_kernel_rows_and_the_gdn_note():
    """A FlashAttention call (MLA prefill) is listed as external, never as a tree kernel; a GDN
    prefill backend line puts the in-tree substitution in the header."""
    import dataclasses

    from vkc.modeltrace.records import TracedEvent
    from vkc.modeltrace.render import header

    t = _trace()
    step = t.step(PREFILL)
    fa = TracedEvent(index=10_000, kind="external", name="vllm_flash_attn::flash_attn_varlen_func", layer=0,
                     module="model.layers.0.self_attn", args=())
    step2 = dataclasses.replace(step, events=step.events + (fa,))
    t2 = dataclasses.replace(t, steps=tuple(step2 if s is step else s for s in t.steps),
                             backends=t.backends + ("Using Triton/FLA GDN prefill kernel (requested=triton, head_k_dim=128).",))
    row = next(r for r in kernel_rows(t2, PREFILL) if r.index == 10_000)
    assert (row.origin, row.kind) == ("external", "vllm_flash_attn")
    assert "FlashInfer" in header(t2, PREFILL)["attention_note"]
    assert "FlashInfer" not in header(t, PREFILL)["attention_note"]
