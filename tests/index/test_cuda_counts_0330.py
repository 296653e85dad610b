"""Pinned CUDA inventory of vLLM 0.33.0 (survey section 3).

Differences from the survey, explained:
* rocm_only: 73 here vs 67 in the survey.  The survey's 67 = 54 under csrc/rocm + 13
  octave_* (gfx/mfma) kernels.  We also mark the 2 sampler.cu kernels defined only inside
  ``#ifdef USE_ROCM`` and the 4 kernels of csrc/kimi_k3/*_rocm.cu (files that include
  <hip/hip_runtime.h> unconditionally), as the task's rule asks.
* launch sites: 271 here vs 262.  Same 28 cudaLaunchKernelEx; chevrons 156 (+2) and
  chevrons inside #define 78 (+3): we count launches in ROCm-only branches too (both
  views are parsed); hipLaunchKernelGGL 9 vs 5 (4 of ours sit inside quick_reduce.h
  #define bodies, which the survey counted as macro sites).
"""
from __future__ import annotations

import time

import pytest

from vkc.index.cuda_scan import launch_sites_total, scan_cuda

pytestmark = pytest.mark.sdist


@pytest.fixture(scope="module")
def kernels(vllm_tree):
    t0 = time.time()
    ks = scan_cuda(vllm_tree)
    return ks, time.time() - t0


def test_counts(kernels):
    ks, _ = kernels
    assert len(ks) == 259
    assert len({k.file for k in ks}) == 90
    assert len({k.name for k in ks}) == 219
    assert sum(k.rocm_only for k in ks) == 73
    assert sum(1 for k in ks if k.template_params) == 222
    assert all(k.file.startswith("csrc/") and not k.file.startswith("csrc/cpu/") for k in ks)
    assert len({k.qualified for k in ks}) == 259


def test_launch_sites(vllm_tree, kernels):
    c = launch_sites_total(vllm_tree)
    assert dict(c) == {"chevron": 156, "macro": 78, "launch_ex": 28, "hip": 9}
    ks, _ = kernels
    resolved = sum(1 for k in ks if any(s.form != "indirect" for s in k.launch_sites))
    assert resolved == 235


def test_known_kernels(kernels):
    ks, _ = kernels
    by = {k.qualified: k for k in ks}
    k = by["csrc/layernorm_kernels.cu:rms_norm_kernel"]
    assert (k.qualname, k.line) == ("vllm::rms_norm_kernel", 15)
    assert k.template_params == ("typename scalar_t", "int VEC_SIZE", "int NUM_DIMS", "bool HasWeight")
    assert [(s.form, s.line, s.wrapper) for s in k.launch_sites] == [("chevron", 274, "rms_norm"), ("chevron", 282, "rms_norm")]
    assert "csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@107" in by
    assert "csrc/layernorm_kernels.cu:fused_add_rms_norm_kernel@180" in by
    x = by["csrc/custom_all_reduce.cuh:cross_device_reduce_1stage"]
    assert x.line == 8 and x.launch_sites[0].form == "macro"
    assert by["csrc/moe/topk_softmax_kernels.cu:topkGating"].line == 280
    assert by["csrc/sampler.cu:topKPerRowDecodeDeviceLengthAware"].rocm_only


def test_scan_is_fast(kernels):
    _, dt = kernels
    assert dt < 60, dt   # ~4 s on an idle 2-core dev box (cold, parses every file twice)
