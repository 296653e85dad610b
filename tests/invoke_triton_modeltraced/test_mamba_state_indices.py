"""State indices of the Mamba / GDN / KDA kernels, and host-copied metadata, on recorded hybrid traces.

With the block table ``is_cuda`` (vkc's H100 answer), vLLM's builders gather each request's current block
with ``_mamba_align_block_table_kernel`` (``mamba_get_block_table_tensor``, align mode); the kernels that
read those state indices take the rule :func:`~vkc.invoke.triton.modeltraced.mamba_align.mamba_align_out`.
KDA's ``prepare_chunk_indices`` copies host values to the device (``async_tensor_h2d``): the trace keeps
them (``notes["host_contents"]``).  Fixtures: slices of a Qwen3-Next-80B-A3B and a Kimi-K3 trace (vLLM
0.33.0), the first launches of each step."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.invoke.triton.modeltraced import build, modeltraced_plan
from vkc.invoke.triton.modeltraced.inits import Refused
from vkc.invoke.triton.modeltraced.mamba_align import mamba_align_out
from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.contents import step_contents
from vkc.modeltrace.records import ScalarArg, StepSpec, TensorArg, TracedEvent, trace_from_json

DATA = Path(__file__).resolve().parent / "data"
DECODE = StepSpec("decode", 2, ctx=64)
PREFILL = StepSpec("prefill", 1, prompt_len=16)
CONV_UPDATE = "vllm.model_executor.layers.mamba.ops.causal_conv1d:_causal_conv1d_update_kernel"
CONV_FWD = "vllm.model_executor.layers.mamba.ops.causal_conv1d:_causal_conv1d_fwd_kernel"
GDN_DECODE = ("vllm.third_party.flash_linear_attention.ops.fused_recurrent:"
              "fused_recurrent_gated_delta_rule_packed_decode_kernel")
ALIGN = "vllm.v1.attention.backends.utils:_mamba_align_block_table_kernel"
KDA = "vllm.models.kimi_k3.nvidia.ops.third_party.kda.chunk:"
GATHER = "vllm.model_executor.layers.mamba.ops.gather_initial_states:_gather_initial_states_kernel"


@pytest.fixture(scope="module")
def qwen():
    return trace_from_json(json.loads((DATA / "qwen3-next.hybrid.trace.json").read_text()))


@pytest.fixture(scope="module")
def kimi():
    return trace_from_json(json.loads((DATA / "kimi-k3.kda.trace.json").read_text()))


def _inits(trace, step, kernel):
    reasons: list[str] = []
    plan = modeltraced_plan(trace, step, kernel, reasons=reasons)
    return ({b.name: b.init for b in plan.full.buffers} if plan else None), reasons, plan


@pytest.mark.parametrize(("kernel", "param"), [(CONV_UPDATE, "conv_state_indices_ptr"),
                                               (GDN_DECODE, "ssm_state_indices")])
def test_decode_state_indices_are_each_requests_current_block(qwen, kernel, param):
    inits, reasons, plan = _inits(qwen, DECODE, kernel)
    assert inits is not None, reasons
    spec = inits[param]
    # block_rows: 2 requests, 1 entry each inside its blocks (ctx 64 < block 544: the first), n_out 1
    assert spec.kind == "block_rows" and spec.params[1:] == (2, 1, 1)
    assert any("_mamba_align_block_table_kernel wrote" in n for n in plan.notes)


def test_prefill_cache_indices(qwen):
    inits, reasons, _ = _inits(qwen, PREFILL, CONV_FWD)
    assert inits is not None, reasons
    assert inits["cache_indices_ptr"].kind == "block_rows" and inits["cache_indices_ptr"].params[1:] == (1, 1, 1)


def test_the_gather_kernel_itself_writes_a_fresh_buffer(qwen):
    inits, reasons, _ = _inits(qwen, DECODE, ALIGN)
    assert inits is not None, reasons
    assert inits["out_ptr"] == InitSpec("empty") and inits["block_table_ptr"].kind == "block_rows"


def test_gdn_builder_host_copies_are_kept(qwen):
    # gdn_attn.py copies the FLA chunk tables (prepare_chunk_indices / _offsets) host -> device: 16 tokens,
    # one chunk of 64: chunk (sequence 0, chunk 0), offsets [0, 1]; the prefill has no initial state
    known = step_contents(qwen, PREFILL)
    by_field = {t.producer: known[t.base].values() for ev in qwen.step(PREFILL).events for _n, t in ev.tensors()
                if t.base in known and t.producer.startswith("metadata:")}
    assert by_field["metadata:chunk_indices"] == [0, 0] and by_field["metadata:chunk_offsets"] == [0, 1]
    assert by_field["metadata:has_initial_state"] == [False]


def test_device_chunk_offsets_take_the_shadowed_values(kimi):
    # FLA's prepare_chunk_offsets runs on the device (cat, cdiv, cumsum over cu_seqlens): the metadata
    # shadows computed the same ops on the host
    inits, reasons, _ = _inits(kimi, PREFILL, "vllm.third_party.flash_linear_attention.ops.chunk_delta_h:"
                               "chunk_gated_delta_rule_fwd_kernel_h_blockdim64")
    assert inits is not None, reasons
    assert inits["chunk_offsets"] == InitSpec("values", ([0, 1],))


@pytest.mark.parametrize("kernel", [KDA + "chunk_gla_fwd_kernel_o", KDA + "kda_gate_chunk_cumsum_vector_kernel"])
def test_kda_chunk_indices_take_the_host_values(kimi, kernel, monkeypatch):
    inits, reasons, _ = _inits(kimi, PREFILL, kernel)
    assert inits is not None, reasons
    assert inits["chunk_indices"] == InitSpec("const", (0,))      # [[0, 0]]: one sequence, one chunk
    monkeypatch.setattr(build, "step_contents", lambda t, s: {})
    inits, reasons, _ = _inits(kimi, PREFILL, kernel)
    assert inits is None and "producer host:h2d" in reasons[0]


def test_kda_gather_initial_states(kimi):
    inits, reasons, _ = _inits(kimi, PREFILL, GATHER)
    assert inits is not None, reasons
    assert inits["indices_ptr"].kind == "block_rows"


def _rule(lens: list[int], table: InitSpec, n_out: int = 1) -> InitSpec:
    """The rule on one synthetic launch (block size 16), the inputs' contents given."""
    out = TensorArg("int32", (len(lens), n_out), (n_out, 1), 0, 4, "s1", 4 * len(lens) * n_out, "alloc")
    bt = TensorArg("int32", (len(lens), 8), (8, 1), 0, 4, "s2", 4 * 8 * len(lens), "metadata:block_table_tensor")
    seq = TensorArg("int32", (len(lens),), (1,), 0, 4, "s3", 4 * len(lens), "metadata:seq_lens")
    ev = TracedEvent(0, "triton", ALIGN, None, None, (("out_ptr", out), ("block_table_ptr", bt),
                     ("seq_lens_ptr", seq), ("block_size", ScalarArg(16)), ("n_out", ScalarArg(n_out))))
    specs = {"block_table_ptr": table, "seq_lens_ptr": InitSpec("values", (lens,))}
    return mamba_align_out(ev, out, lambda n, t, e: specs[n])


def test_speculative_columns_past_the_requests_blocks_are_the_null_block():
    # 40 tokens in blocks of 16: 3 blocks used, the current one is the third; n_out 3 -> 1 inside, 2 null
    assert _rule([40, 40], InitSpec("block_rows", (100, 2, 3, 8)), n_out=3) == InitSpec("block_rows", (100, 2, 1, 3))


def test_refusals():
    with pytest.raises(Refused, match="different depths"):
        _rule([40, 16], InitSpec("block_rows", (100, 2, 3, 8)), n_out=3)
    with pytest.raises(Refused, match="not vLLM's persistent rows"):
        _rule([40, 40], InitSpec("block_table", (100,)))
