"""Checklist step ``block-size``: the KV-cache block size is what vLLM's start-up chooses
(``current_platform.update_block_size_for_backend`` after ``load_model``), recorded in the trace and said in
every artifact when it is not vLLM's default 16.  Recorded data: the Llama-3.1-8B fixture (16, TRITON_ATTN)
and Kimi-K3's worker answer (5760: the hybrid MLA/KDA page alignment); no vLLM run."""
from __future__ import annotations

import dataclasses
import json
import sys
import types
from pathlib import Path

import pytest

from vkc.modeltrace import startup_steps
from vkc.modeltrace.layers import plan_layers
from vkc.modeltrace.records import StepSpec, TraceOptions, trace_from_json, trace_to_json
from vkc.modeltrace.render import render_table, serving_notes
from vkc.modeltrace.trace import _worker_options
from vkc.modeltrace.worker import _num_blocks

DATA = Path(__file__).resolve().parents[1] / "data" / "modeltrace"
DECODE = StepSpec("decode", 64, ctx=4096)
# what the worker answered for defaults:KimiK3ForConditionalGeneration (vLLM 0.33.0, 2026-12-03)
KIMI_K3 = {"before": 16, "block_size": 5760, "user_specified": False,
           "how": "Platform.update_block_size_for_backend (the attention backends' block sizes, the hybrid "
                  "attention/Mamba page alignment): 16 -> 5760"}


def _llama():
    return trace_from_json(json.loads((DATA / "llama-3.1-8b-instruct.trace.json").read_text()))


def _kimi_like():
    t = _llama()
    return dataclasses.replace(t, options=dataclasses.replace(t.options, block_size=None),
                               vllm_config={**t.vllm_config, "block_size": 5760},
                               notes={**t.notes, "block_size": KIMI_K3})


def test_the_default_block_size_is_vllms_choice_not_a_flag():
    opts = TraceOptions((DECODE,))
    assert opts.block_size is None                      # no --block-size: vLLM's start-up picks it
    w = _worker_options(opts, plan_layers({"num_hidden_layers": 2}))
    assert w["block_size"] is None and w["num_blocks"] == 16385   # the blocks sized at vLLM's default 16


def test_llama_keeps_16_and_says_nothing():
    t = _llama()
    assert t.block_size == 16
    assert not any("block size" in n for n in serving_notes(t))
    assert "KV-cache block size" not in render_table(t, DECODE, width=220)


def test_a_chosen_block_size_is_recorded_and_said():
    t = _kimi_like()
    assert t.block_size == 5760
    note = [n for n in serving_notes(t) if "block size" in n]
    assert note == ["KV-cache block size 5760 tokens (not vLLM's default 16): " + KIMI_K3["how"]]
    assert "KV-cache block size: 5760 tokens" in render_table(t, DECODE, width=220)
    back = trace_from_json(json.loads(json.dumps(trace_to_json(t))))
    assert back.options.block_size is None and back.block_size == 5760 and back.notes["block_size"] == KIMI_K3


def test_the_worker_allocates_enough_blocks_for_a_smaller_choice():
    req = {"options": {"num_blocks": 16385}, "steps": [{"batch": 64, "ctx": 4096, "prompt_len": 0}]}
    assert _num_blocks(req, 16) == 16385
    assert _num_blocks(req, 8) == 64 * 512 + 1


def _fake_vllm(monkeypatch, update):
    plat = types.SimpleNamespace() if update is None else types.SimpleNamespace(update_block_size_for_backend=update)
    mod = types.ModuleType("vllm.platforms")
    mod.current_platform = plat  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", types.ModuleType("vllm"))
    monkeypatch.setitem(sys.modules, "vllm.platforms", mod)


def _config(hybrid, user=False, block=16):
    return types.SimpleNamespace(
        cache_config=types.SimpleNamespace(block_size=block, user_specified_block_size=user,
                                           kv_cache_dtype_skip_layers=None),
        model_config=types.SimpleNamespace(is_hybrid=hybrid))


@pytest.mark.parametrize(("hybrid", "chosen", "how"), [
    (False, 16, ""),                                         # Llama-3.1-8B, TRITON_ATTN: MultipleOf(16) takes 16
    (True, 5760, KIMI_K3["how"]),                            # Kimi-K3: MLA page >= the KDA state page
])
def test_update_block_size_runs_vllms_function(monkeypatch, hybrid, chosen, how):
    calls = []

    def update(vc):
        calls.append(vc)
        vc.cache_config.block_size = chosen

    _fake_vllm(monkeypatch, update)
    vc = _config(hybrid)
    got = startup_steps.update_block_size(vc)
    assert calls == [vc] and vc.cache_config.block_size == chosen
    assert got == {"block_size": chosen, "before": 16, "user_specified": False, "how": how}


def test_a_given_block_size_and_an_older_release(monkeypatch):
    _fake_vllm(monkeypatch, lambda vc: None)
    got = startup_steps.update_block_size(_config(False, user=True, block=32))
    assert got["block_size"] == 32 and got["user_specified"] and "--block-size given" in got["how"]
    _fake_vllm(monkeypatch, None)            # no update_block_size_for_backend: the engine config's size stands
    assert startup_steps.update_block_size(_config(False))["how"] == ""
