"""The real worker on vLLM 0.33.0's own tests, op jobs (slow: one worker process, ~60 s)."""
from __future__ import annotations

import pytest

from vkc.testtrace import op_call_of, op_calls_for, op_captures

RMS = "csrc/layernorm_kernels.cu:rms_norm_kernel"
CACHE = "csrc/cache_kernels.cu:reshape_and_cache_flash_kernel"
DIMS = {"dtype": "bfloat16", "h_q": 32, "h_kv": 8, "head_dim": 128, "hidden": 4096, "intermediate": 14336}


@pytest.mark.slow
@pytest.mark.sdist
def test_worker_records_op_calls_and_caches_them(vllm_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path))
    caps = op_captures(vllm_tree, [RMS, CACHE], DIMS, max_tests=1)
    (rms,), (cache,) = caps[RMS], caps[CACHE]
    assert rms.ok and cache.ok, (rms.reason, cache.reason)
    call = op_call_of(rms)
    assert call.mode == "test-traced" and call.op == "_C::rms_norm"
    assert call.source.startswith("test-traced: tests/kernels/core/test_layernorm.py::test_rms_norm[")
    assert [n for n, _a in call.event.args] == ["result", "input", "weight", "epsilon"]
    assert dict(call.event.args)["input"].shape[-1] == 4096 and dict(call.event.args)["input"].dtype == "bfloat16"
    slots = op_call_of(cache)
    args = dict(slots.event.args)
    sm, kc = args["slot_mapping"], args["key_cache"]
    values = slots.contents[sm.base].values()
    assert sm.producer == "test" and len(values) == sm.shape[0]
    assert len(set(values)) == len(values) and all(0 <= v < kc.shape[0] * kc.shape[1] for v in values)
    assert kc.shape[2:] == (32, 128)                                   # num_heads, head_size from the model
    # cached: the public entry answers from disk without a worker
    monkeypatch.setenv("VKC_TEST_TRACE", "1")
    monkeypatch.setattr("vkc.testtrace.trace._run_worker", lambda *a: pytest.fail("worker started"))
    got = op_calls_for(vllm_tree, "rms_norm_kernel", DIMS, max_tests=1)
    assert got == (call,)
