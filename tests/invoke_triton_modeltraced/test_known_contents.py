"""Sampler kernels of a featured trace: their index buffers take the contents vLLM's runner wrote.

Without the known contents (``StepFacts.known``) both launches are refused: ``idx_mapping`` and the
per-request top-k are index-like buffers no producer rule covers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.invoke.triton.modeltraced import build, modeltraced_plan
from vkc.modeltrace.records import StepSpec, trace_from_json

SAMPLER = Path(__file__).resolve().parent.parent / "data" / "modeltrace" / "llama-3.1-8b-instruct.sampler.trace.json"
DECODE = StepSpec("decode", 64, ctx=4096)
TEMPERATURE = "vllm.v1.worker.gpu.sample.gumbel:_temperature_kernel"
TOPK_TOPP = "vllm.v1.sample.ops.topk_topp_triton:_topk_topp_kernel"


@pytest.fixture(scope="module")
def trace():
    return trace_from_json(json.loads(SAMPLER.read_text()))


def _inits(trace, kernel):
    reasons: list[str] = []
    plan = modeltraced_plan(trace, DECODE, kernel, small_step=DECODE, reasons=reasons)
    return ({b.name: b.init for b in plan.full.buffers} if plan else None), reasons


def _values(init):
    """The elements a ``values`` / ``runs`` init spec gives."""
    if init.kind == "runs":
        return [v for v, n in zip(*init.params) for _ in range(n)]
    assert init.kind == "values", init
    return list(init.params[0])


def test_request_slots_and_sampling_params_take_the_runner_values(trace):
    inits, reasons = _inits(trace, TEMPERATURE)
    assert inits is not None, reasons
    ids = _values(inits["expanded_idx_mapping_ptr"])[:64]   # the runner's request slots: 64 distinct, >= 0
    assert len(set(ids)) == 64 and min(ids) >= 0
    assert 0.7 in [round(v, 6) for v in _values(inits["temperature_ptr"])]
    inits, reasons = _inits(trace, TOPK_TOPP)
    assert inits is not None, reasons
    assert inits["K"].kind == "const" and inits["K"].params == (50,)


def test_without_the_known_contents_the_launches_are_refused(trace, monkeypatch):
    monkeypatch.setattr(build, "step_contents", lambda t, s: {})
    for kernel in (TEMPERATURE, TOPK_TOPP):
        inits, reasons = _inits(trace, kernel)
        assert inits is None and reasons and "no" in reasons[0] and "rule" in reasons[0]


PREFILL = StepSpec("prefill", 4, prompt_len=2048)
BINCOUNT = "vllm.v1.worker.gpu.sample.penalties:_bincount_kernel"
WRITE = "vllm.v1.worker.gpu.buffer_utils:_apply_write_kernel"


def test_admission_kernels_take_the_staged_values(trace):
    """A prefill step admits its requests: the staged writes' lists and the penalties' new-request
    mapping are what vLLM copied to the device, and ``all_token_ids`` is the staged prompt tokens."""
    plan = modeltraced_plan(trace, PREFILL, BINCOUNT, small_step=PREFILL, reasons=(reasons := []))
    assert plan is not None, reasons
    inits = {b.name: b.init for b in plan.full.buffers}
    slots = inits["expanded_idx_mapping_ptr"]
    assert slots.kind in ("values", "const") and len(set(slots.params[0])) == 4     # the 4 admitted requests
    assert inits["all_token_ids_ptr"].kind == "const" and inits["all_token_ids_ptr"].params == (0,)
    plan = modeltraced_plan(trace, PREFILL, WRITE, small_step=PREFILL, reasons=(reasons := []))
    assert plan is not None, reasons
    names = [name for name, _cfg in plan.extra]
    assert "FULL.2" in names                  # the three staged writes: two launch shapes
    for cfg in (plan.full, *(cfg for _name, cfg in plan.extra)):
        inits = {b.name: b.init for b in cfg.buffers}
        assert inits["write_indices_ptr"].kind in ("values", "const", "runs")
        assert inits["write_cu_lens_ptr"].kind in ("values", "const", "runs")


def test_without_admission_contents_the_admission_launches_are_refused(trace, monkeypatch):
    real = build.step_contents

    def no_admission(t, s):
        known = real(t, s)
        read = {a.base for ev in t.step(s).events if ev.module == "sampler.admit" for _n, a in ev.tensors()}
        written = {o.base for ev in t.step(s).events if ev.module != "sampler.admit" for o in ev.outputs}
        return {b: c for b, c in known.items() if b not in read or b in written}

    monkeypatch.setattr(build, "step_contents", no_admission)
    reasons: list[str] = []
    plan = modeltraced_plan(trace, PREFILL, BINCOUNT, small_step=PREFILL, reasons=reasons)
    assert plan is None and reasons and "expanded_idx_mapping" in reasons[0], reasons
