"""The V2 runner's per-step launches (checklist steps ``runner-*``) from a recorded trace (no vLLM run).

Fixture: ``tests/data/modeltrace/llama-3.1-8b-instruct.runner.trace.json``, the ``trace_model`` cache file of
Llama-3.1-8B-Instruct traced with ``features=("bitmask", "sampler")`` at decode 64 x 4096 and prefill 4 x 2048
(the sampler fixture's options) with :mod:`vkc.modeltrace.runner_prepare`.  Every event and host content of
the sampler fixture (traced before those steps existed) is in it unchanged: the runner's launches come last
and number their storages from ``s2000000``.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.invoke.triton.modeltraced import modeltraced_plan
from vkc.modeltrace.contents import step_contents, step_pointers
from vkc.modeltrace.records import StepSpec, _event_to, trace_from_json

DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"
RUNNER = DATA / "llama-3.1-8b-instruct.runner.trace.json"
SAMPLER = DATA / "llama-3.1-8b-instruct.sampler.trace.json"
DECODE = StepSpec("decode", 64, ctx=4096)
PREFILL = StepSpec("prefill", 4, prompt_len=2048)
BT = "vllm.v1.worker.gpu.block_table"
IB = "vllm.v1.worker.gpu.input_batch"
GATHER, SLOTS = f"{BT}:_gather_block_tables_kernel", f"{BT}:_compute_slot_mappings_kernel"
PREFILL_INPUTS, COMBINE = f"{IB}:_prepare_prefill_inputs_kernel", f"{IB}:_combine_sampled_and_draft_tokens_kernel"
POST = f"{IB}:_post_update_kernel"
ORDER = {"decode": [COMBINE, GATHER, SLOTS, POST], "prefill": [PREFILL_INPUTS, COMBINE, GATHER, SLOTS, POST]}


@pytest.fixture(scope="module")
def runner():
    return trace_from_json(json.loads(RUNNER.read_text()))


@pytest.fixture(scope="module")
def sampler():
    return trace_from_json(json.loads(SAMPLER.read_text()))


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_every_earlier_event_and_content_is_the_sampler_trace_s(runner, sampler, spec):
    old, new = sampler.step(spec), runner.step(spec)
    n = len(old.events)
    assert [_event_to(e) for e in new.events[:n]] == [_event_to(e) for e in old.events]     # ids included
    tail = new.events[n:]
    assert [e.name for e in tail if e.kind == "triton"] == ORDER[spec.workload]
    assert {e.module for e in tail} <= {"sampler.prepare", "sampler.postprocess"} and all(e.layer is None for e in tail)
    before, after = step_contents(sampler, spec), step_contents(runner, spec)
    assert {k: after[k] for k in before} == before
    # a storage the runner's launches read is the sampler trace's own (same id) or new, numbered from s2000000
    known = {t.base for st in sampler.steps for e in st.events for t in [*(t for _n, t in e.tensors()), *e.outputs]}
    known |= {b for st in sampler.steps for b in step_contents(sampler, st.spec)}
    fresh = {t.base for e in tail for _n, t in e.tensors()} - known
    assert fresh and all(int(b[1:]) >= 2_000_000 for b in fresh)
    assert not {b for b in known if int(b[1:]) >= 2_000_000}


def _plan(trace, spec, kernel):
    reasons: list[str] = []
    plan = modeltraced_plan(trace, spec, kernel, small_step=spec, reasons=reasons)
    assert plan is not None, reasons
    return plan.full, {b.name: b.init for b in plan.full.buffers}


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_block_tables_gathered_from_the_staged_block_ids(runner, spec):
    cfg, inits = _plan(runner, spec, GATHER)
    assert cfg.grid == (1, spec.batch)
    slots = inits["batch_idx_to_req_idx"].params[0]
    assert len(set(slots)) == spec.batch and min(slots) >= 0        # the admitted requests' slots
    (src,) = inits["src_block_table_ptrs"].params[0]
    kind, values, counts = src[4]
    assert kind == "runs" and src[1] == "int32"
    table = [v for v, c in zip(values, counts) for _ in range(c)]
    width = 8192                                                     # 131072 / 16
    per_req = -(-(spec.ctx or spec.prompt_len) // 16)
    rows = [table[r * width:(r + 1) * width] for r in slots]
    ids = [b for row in rows for b in row[:per_req]]
    assert sorted(ids) == list(range(1, spec.batch * per_req + 1))   # a fresh KV cache manager's blocks
    assert all(not any(row[per_req:]) for row in rows)
    nb = inits["num_blocks_ptr"]           # known contents: values, or runs where they are shorter
    counts_per_slot = [v for v, c in zip(*nb.params) for _ in range(c)] if nb.kind == "runs" else nb.params[0]
    assert {counts_per_slot[r] for r in slots} == {per_req}
    (dst,) = inits["dst_block_table_ptrs"].params[0]
    assert dst[4] == ("const", 0)


@pytest.mark.parametrize("spec", [DECODE, PREFILL], ids=lambda s: s.id)
def test_slot_mappings_and_input_kernels_take_the_step_s_values(runner, spec):
    cfg, inits = _plan(runner, spec, SLOTS)
    assert cfg.grid == (1, spec.batch + 1)
    assert inits["block_sizes"].params == (16,) and inits["block_table_strides"].params == (8192,)
    for kernel in (COMBINE, POST) + ((PREFILL_INPUTS,) if spec.workload == "prefill" else ()):
        _cfg, inits = _plan(runner, spec, kernel)
        assert "idx_mapping_ptr" in inits or "idx_mapping" in inits
    pointers = step_pointers(runner, spec)
    assert len(pointers) == 2 and all(len(v) == 1 for v in pointers.values())
