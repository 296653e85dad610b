"""modeltraced_plan against the recorded traces (no vLLM run): launches, views, ranged contents."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vkc.invoke.triton.modeltraced import kv_blocks, modeltraced_plan
from vkc.invoke.triton.modeltraced.build import ModelTracedPlan
from vkc.invoke.triton.plan import Scalar, TensorView
from vkc.invoke.triton.recipes.moe import align_block_size, routing
from vkc.modeltrace.records import ModelTrace, ScalarArg, StepSpec, TensorArg, trace_from_json

TESTS = Path(__file__).resolve().parent.parent
LLAMA = TESTS / "data" / "modeltrace" / "llama-3.1-8b-instruct.trace.json"
QWEN_MOE = Path(__file__).resolve().parent / "data" / "qwen3-30b-a3b.moe.trace.json"
UA = "vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention"
RC = "vllm.v1.attention.ops.triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash"
MOE = "vllm.model_executor.layers.fused_moe.fused_moe:fused_moe_kernel"
DECODE = StepSpec("decode", 64, ctx=4096)
PREFILL = StepSpec("prefill", 4, prompt_len=2048)


@pytest.fixture(scope="module")
def llama() -> ModelTrace:
    return trace_from_json(json.loads(LLAMA.read_text()))


@pytest.fixture(scope="module")
def qwen() -> ModelTrace:
    return trace_from_json(json.loads(QWEN_MOE.read_text()))


def _first(trace: ModelTrace, spec: StepSpec, kernel: str):
    return next(e for e in trace.step(spec).events if e.kind == "triton" and e.name == kernel)


def _check_against_event(plan: ModelTracedPlan, ev) -> None:
    cfg = plan.full
    assert cfg.grid == tuple(ev.grid)
    assert dict(cfg.constexprs) == dict(ev.constexprs)
    assert cfg.num_warps == (ev.num_warps or 4) and cfg.num_stages == (ev.num_stages or 3)
    assert [a.param for a in cfg.args] == [n for n, _a in ev.args]
    buf_of: dict[str, str] = {}
    for (n, a), got in zip(ev.args, cfg.args):
        if isinstance(a, ScalarArg):
            assert isinstance(got, Scalar) and got.value == a.value, n
            continue
        assert isinstance(a, TensorArg) and isinstance(got, TensorView), n
        assert (got.dtype, got.shape, got.stride, got.storage_offset) == (a.dtype, a.shape, a.stride, a.offset), n
        # one buffer per traced storage, sized as the storage, views of one storage share it
        assert buf_of.setdefault(a.base, got.base) == got.base, n
        buf = cfg.buffer(got.base)
        assert buf.shape[0] * a.itemsize == a.base_nbytes, n
    assert len({b.name for b in cfg.buffers}) == len(buf_of)


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=["decode", "prefill"])
def test_unified_attention_is_the_traced_launch(llama, spec):
    plan = modeltraced_plan(llama, spec, UA)
    assert plan is not None
    ev = _first(llama, spec, UA)
    _check_against_event(plan, ev)
    cfg = plan.full
    # key and value caches: two views of ONE fused buffer, at the traced offsets
    k, v = cfg.arg("key_cache_ptr"), cfg.arg("value_cache_ptr")
    assert isinstance(k, TensorView) and isinstance(v, TensorView)
    assert k.base == v.base and (k.storage_offset, v.storage_offset) == (0, 128)
    nb = kv_blocks(llama.step(spec))
    assert nb == k.shape[0] == 16897
    q, ctx = (1, 4096) if spec.workload == "decode" else (2048, 2048)
    # the batch's rows of vLLM's persistent [max_num_seqs, cdiv(max_model_len, 16)] table: its stride
    # is the table's width (131072 / 16), each row's first ctx/16 entries the request's blocks
    table = cfg.arg("block_tables_ptr")
    assert isinstance(table, TensorView) and table.shape == (spec.batch, 8192) and table.stride == (8192, 1)
    assert cfg.arg("block_table_stride").value == 8192
    bt = cfg.buffer(table.base)
    assert bt.init.kind == "block_rows" and bt.init.params == (nb, spec.batch, ctx // 16, 8192)
    seq = cfg.buffer(cfg.arg("seq_lens_ptr").base)
    assert seq.init.kind == "values" and seq.init.params[0] == [ctx] * spec.batch
    qsl = cfg.buffer(cfg.arg("query_start_len_ptr").base)
    assert qsl.init.params[0] == [i * q for i in range(spec.batch + 1)]
    assert cfg.buffer(cfg.arg("output_ptr").base).init.kind == "empty"
    assert cfg.buffer(cfg.arg("query_ptr").base).init.kind == "randn"
    assert cfg.buffer(k.base).init.kind == "randn"
    # both layers launch it identically (their KV caches are slices of one storage): one configuration
    assert plan.extra == () and plan.roles[0].layers == (0, 1)


def test_reshape_and_cache_is_the_traced_launch(llama):
    plan = modeltraced_plan(llama, DECODE, RC)
    assert plan is not None
    ev = _first(llama, DECODE, RC)
    _check_against_event(plan, ev)
    assert (plan.full.num_warps, plan.full.num_stages) == (16, 10)
    cfg = plan.full
    sm = cfg.buffer(cfg.arg("slot_mapping_ptr").base)
    assert sm.init.kind == "slot_mapping" and sm.init.params == (16897 * 16,)
    ks = cfg.buffer(cfg.arg("k_scale").base)
    assert ks.init.kind == "const" and ks.init.params == (1.0,)


def test_small_config_cuts_the_kv_cache(llama):
    plan = modeltraced_plan(llama, PREFILL, UA, small_step=PREFILL)
    assert plan is not None
    need = 4 * 2048 // 16 + 1
    k = plan.small.arg("key_cache_ptr")
    assert isinstance(k, TensorView) and k.shape[0] == need and k.stride == plan.full.arg("key_cache_ptr").stride
    bt = plan.small.buffer(plan.small.arg("block_tables_ptr").base)
    assert bt.init.kind == "block_rows" and bt.init.params == (need, 4, 2048 // 16, 8192)
    assert plan.small.live_bytes < plan.full.live_bytes


def test_not_launched_and_refused_give_reasons(llama):
    reasons: list[str] = []
    assert modeltraced_plan(llama, DECODE, MOE, reasons=reasons) is None
    assert "not launched" in reasons[0]
    # an index-like argument whose producer has no rule: refused, not guessed
    step = llama.step(DECODE)
    ev = _first(llama, DECODE, UA)
    args = tuple((n, dataclasses.replace(a, producer="unknown") if n == "block_tables_ptr" else a) for n, a in ev.args)
    events = tuple(dataclasses.replace(e, args=args) if e.index == ev.index else e for e in step.events)
    bad = dataclasses.replace(llama, steps=(dataclasses.replace(step, events=events),))
    reasons = []
    assert modeltraced_plan(bad, DECODE, UA, reasons=reasons) is None
    assert "block_tables_ptr" in reasons[0] and "index-like" in reasons[0]


@pytest.mark.parametrize("workload", ["decode", "prefill"])
def test_fused_moe_two_gemms_and_valid_routing(qwen, workload):
    full, small = (DECODE, StepSpec("decode", 2, ctx=64)) if workload == "decode" else (
        PREFILL, StepSpec("prefill", 1, prompt_len=64))
    plan = modeltraced_plan(qwen, full, MOE, small_step=small)
    assert plan is not None
    names = [n for n, _c in plan.configs()]
    assert names == ["FULL", "SMALL", "FULL.2", "SMALL.2"]
    evs = [e for e in qwen.step(full).events if e.name == MOE]
    _check_against_event(plan, evs[0])
    cfgs = dict(plan.configs())
    assert cfgs["FULL"].constexprs["MUL_ROUTED_WEIGHT"] is False and cfgs["FULL.2"].constexprs["MUL_ROUTED_WEIGHT"] is True
    assert {r.name: r.role.rsplit(" ", 1)[-1] for r in plan.roles if r.name.startswith("FULL")} == {
        "FULL": "w13_weight", "FULL.2": "w2_weight"}
    for name in ("FULL", "FULL.2"):
        cfg = cfgs[name]
        sc = {s.param: s.value for s in cfg.scalars}
        sorted_ids = cfg.buffer(cfg.arg("sorted_token_ids_ptr").base).init.params[0]
        expert_ids = cfg.buffer(cfg.arg("expert_ids_ptr").base).init.params[0]
        total = cfg.buffer(cfg.arg("num_tokens_post_padded_ptr").base).init.params[0][0]
        E, numel = 128, sc["num_valid_tokens"]
        assert len(sorted_ids) == sc["EM"] and all(0 <= t <= numel for t in sorted_ids)
        assert all(-1 <= e < E for e in expert_ids) and 0 < total <= sc["EM"]
        assert sorted(t for t in sorted_ids if t < numel) == list(range(numel))   # every routed row once
        M, k = numel // 8, 8
        s, e, tot = align_block_size(routing(M, E, k), cfg.constexprs["BLOCK_SIZE_M"], E)
        assert (sorted_ids, expert_ids, total) == (s, e, tot)
    tw = cfgs["FULL.2"].buffer(cfgs["FULL.2"].arg("topk_weights_ptr").base)
    assert tw.init.kind == "const" and tw.init.params == (0.125,)


def test_fused_moe_naive_assignment_small_decode(qwen):
    """decode 2 x 64: vLLM skips moe_align (naive block assignment); expert ids are the router's
    top-k ids and num_tokens_post_padded is EM (its torch.full), not an empty buffer."""
    plan = modeltraced_plan(qwen, DECODE, MOE, small_step=StepSpec("decode", 2, ctx=64))
    assert plan is not None
    cfg = plan.small
    assert cfg.constexprs["naive_block_assignment"] is True
    sc = {s.param: s.value for s in cfg.scalars}
    ntp = cfg.buffer(cfg.arg("num_tokens_post_padded_ptr").base).init
    assert ntp.kind == "values" and ntp.params[0] == [sc["EM"]]
    ids = cfg.buffer(cfg.arg("expert_ids_ptr").base).init.params[0]
    assert ids == [x for row in routing(2, 8, 8) for x in row]   # SMALL: concentrated on k experts
    assert any("SMALL routing" in n for n in plan.notes)
