"""The real worker on vLLM 0.33.0's own tests (slow: one worker process, ~30-60 s for the vLLM import)."""
from __future__ import annotations

import pytest

from vkc.testtrace import TestJob, VllmTest, capture_tests

CONV = "vllm.model_executor.layers.mamba.ops.causal_conv1d:_causal_conv1d_update_kernel"
TOPK = "vllm.model_executor.kernels.attention.dsa.candidate_blocks:_candidate_flags_kernel"
DIMS = {"dtype": "bfloat16", "h_q": 32, "h_kv": 8, "head_dim": 128, "hidden": 4096}


@pytest.mark.slow
@pytest.mark.sdist
def test_worker_captures_and_explains(vllm_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path))
    conv = VllmTest("tests/kernels/mamba/test_causal_conv1d.py", "test_causal_conv1d_update", 131)
    amd = VllmTest("tests/kernels/models/amd/test_dsv41_gfx942_topk.py",
                   "test_candidate_top_k_matches_mask_and_top_k", 1, fixtures=("gfx942_decode",))
    ok, fx = capture_tests(vllm_tree, [TestJob(conv, CONV, None, DIMS), TestJob(amd, TOPK, None, None)])
    assert ok.ok, ok.reason
    assert ok.test_id.startswith("tests/kernels/mamba/test_causal_conv1d.py::test_causal_conv1d_update[dim=2048-")
    assert ok.mapped == {"itype": "bfloat16"}
    assert ok.launch is not None and ok.launch["grid"] == [2, 8]
    assert ok.launch["site"]["function"] == "causal_conv1d_update"
    assert ok.buffers["conv_state_indices"]["values"] == [1, 2]      # the test's own indices, read back
    assert ok.buffers["x"]["values"] is None and ok.buffers["x"]["dtype"] == "bfloat16"
    assert not fx.ok and fx.category in ("fixture", "import"), fx
    assert fx.reason and "Traceback" not in fx.reason
    # cached: a second call does not start the worker
    again = capture_tests(vllm_tree, [TestJob(conv, CONV, None, DIMS)])
    assert again == [ok]
    assert len(list(tmp_path.joinpath("testtraces").glob("*.json"))) == 2
