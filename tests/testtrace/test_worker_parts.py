"""Pieces of the test worker that run without vLLM: integer contents (verbatim or as runs) and the
classification of ROCm/XPU-only tests as not applicable (vkc.testtrace.worker)."""
from __future__ import annotations

import pytest
import torch

from vkc.testtrace import worker


def _contents_of(t: torch.Tensor) -> dict:
    f = worker._Factory()
    name = f.describe(t, "idx_ptr")["base"]
    return worker._contents(f, name)


def test_small_integer_storage_verbatim_and_float_never():
    assert _contents_of(torch.tensor([3, 1, 2], dtype=torch.int32)) == {"values": [3, 1, 2]}
    assert _contents_of(torch.ones(4)) == {"values": None}


def test_large_integer_storage_as_runs_or_not_at_all():
    cache = torch.zeros(worker.MAX_VALUES + 10, dtype=torch.uint8)
    cache[5:9] = 7
    assert _contents_of(cache) == {"values": None, "runs": [[0, 7, 0], [5, 4, worker.MAX_VALUES + 1]]}
    noisy = torch.arange(worker.MAX_VALUES * 2 + 2, dtype=torch.int32) % 3     # too many runs to keep
    assert _contents_of(noisy) == {"values": None}


@pytest.mark.parametrize(("reason", "category"), [
    ("ROCm bf16x3 router GEMM requires gfx950", "not-applicable"),
    ("UltraQuant D=256 FlyDSL kernel is unavailable", "not-applicable"),
    ("CUDA not available", "skipped"),
    ("requires sm_100/sm_103 (Blackwell)", "skipped"),
])
def test_skip_categories(reason, category):
    assert worker._skip_category(reason) == category


@pytest.mark.parametrize(("reason", "category"), [
    ("RuntimeError: rocm_fp32_router_gemm requires ROCm gfx950 at vllm/x.py:113", "not-applicable"),
    ("AssertionError: Torch not compiled with XPU enabled at tests/kernels/attention/test_xpu_mla_sparse.py:96",
     "not-applicable"),
    ("AssertionError at vllm/v1/attention/ops/rocm_aiter_mla_sparse.py:3548", "error"),
    ("RuntimeError: DeepGEMM is not available at vllm/utils/deep_gemm.py:351", "error"),
])
def test_error_categories(reason, category):
    assert worker._error_category(reason) == category
