"""Pinned counts of the Triton index of vLLM 0.33.0 (compare: shared survey, section 1).

Differences from the survey, all explained in the index's docs/report:
* 861 entries for 864 jit definitions: the 5 platform-conditional alternatives
  (round_int8 x3, softplus x2) collapse to one entry per (module, qualname).
* 631 entries / 230 helpers / 0 orphans (survey 630 / 231 / 3): the survey's
  orphans are resolved: the gpt_oss monkey-patch kernels are launched from nested
  host functions (one is a helper), gluon ``max`` is imported and called by
  other gluon kernels (helper), and the lazily imported SoA ``_tq_full_dequant_kv``
  is launched through ``_, soa_dequant, _ = _soa_imports()`` (entry).
"""
from __future__ import annotations

import sys
from collections import Counter

import pytest

from vkc.index.triton_scan import run_scan

pytestmark = pytest.mark.sdist


_IMPORTED: list[str] = []


@pytest.fixture(scope="module")
def scan(vllm_tree):
    before = set(sys.modules)
    result = run_scan(vllm_tree)
    _IMPORTED.extend(m for m in set(sys.modules) - before if m == "vllm" or m.startswith("vllm."))
    return result


@pytest.fixture(scope="module")
def entries(scan):
    return {k.qualified: k for k in scan.entries}


def test_jit_functions(scan, entries):
    assert sum(len(v) for v in scan.project.jit_alts.values()) == 864   # definitions
    assert len(entries) == 861                                           # one per module:qualname
    gluon = [k for k in entries.values() if any(d.startswith("gluon.") for d in k.decorators)]
    assert len(gluon) == 36
    assert len({k.file for k in entries.values()}) == 301
    assert sum("." in k.qualname for k in entries.values()) == 59        # 54 class members + 5 nested


def test_roles(entries):
    assert Counter(k.role for k in entries.values()) == {"entry": 631, "helper": 230}


def test_launch_sites(entries):
    forms = Counter(s.form for k in entries.values() for s in k.launch_sites)
    assert forms == {"grid": 606, "launcher_class": 27, "dispatcher": 15, "warmup": 8, "indirect": 6}
    per_entry = Counter(len(k.launch_sites) for k in entries.values() if k.role == "entry")
    assert per_entry == {1: 603, 2: 26, 3: 1, 4: 1}
    cross = [k for k in entries.values() if any(s.file != k.file for s in k.launch_sites)]
    assert len(cross) == 13


def test_ambiguous_entry_names(entries):
    names = Counter(k.name for k in entries.values() if k.role == "entry")
    ambiguous = {n: c for n, c in names.items() if c > 1}
    assert (len(ambiguous), sum(ambiguous.values())) == (71, 182)


def test_decorators_of_entries(entries):
    ent = [k for k in entries.values() if k.role == "entry"]
    assert sum(any(d.startswith("triton.autotune") for d in k.decorators) for k in ent) == 52
    assert sum(any(d.startswith("triton.heuristics") for d in k.decorators) for k in ent) == 66


@pytest.mark.parametrize("qualified, role, line", [
    ("vllm.model_executor.layers.quantization.utils.int8_utils:round_int8", "helper", 30),   # else branch
    ("vllm.model_executor.layers.mamba.ops.mamba_ssm:softplus", "helper", 196),              # if TRITON3
    ("vllm.models.common.ops.fused_qk_rmsnorm:FusedQKVRMSNormKernel.kernel", "entry", None),
    ("vllm.v1.attention.ops.prefix_prefill:_fwd_kernel", "entry", None),
    ("vllm.v1.attention.ops.turboquant_soa.triton_turboquant_decode:_tq_full_dequant_kv", "entry", None),
    ("vllm.models.inkling.amd.ops.gluon.utils:max", "helper", None),
])
def test_spot_checks(entries, qualified, role, line):
    k = entries[qualified]
    assert k.role == role
    if line is not None:
        assert k.line == line


def test_known_launches(entries):
    k = entries["vllm.v1.attention.ops.triton_unified_attention:reduce_segments"]
    assert len({s.file for s in k.launch_sites}) == 4
    indirect = sorted(q.split(":")[1] for q, k in entries.items()
                      if any(s.form == "indirect" for s in k.launch_sites))
    assert indirect == ["_bmm_chunk_fwd_kernel", "_chunk_cumsum_fwd_kernel", "_chunk_scan_fwd_kernel",
                        "_chunk_state_fwd_kernel", "_reshape_cache_int4_kernel", "_state_passing_fwd_kernel"]
    launcher = entries["vllm.models.common.ops.fused_qk_rmsnorm:FusedQKVRMSNormKernel.kernel"].launch_sites
    assert [(s.form, s.wrapper) for s in launcher] == [("launcher_class", "FusedQKVRMSNormKernel.__call__")]


def test_scan_is_static(scan):
    assert _IMPORTED == []          # vLLM is never imported
    assert not scan.unclassified
    assert not scan.project.parse_errors


def test_platform_only_modules(entries):
    """Kernels of modules vLLM imports only on ROCm/XPU (vkc.index.platform_graph) are rocm_only.

    73 of the 94 entry kernels under vllm/models/*/amd/ and all 3 under deepseek_v4/xpu/; the
    other 21 amd/ entries are imported by code whose guard is not a platform test at the
    import site (deepseek_v4/attention.py behind ``if qr_scale is None: return``, the kimi_k3
    warmup called under ``is_rocm()`` at its call site, mxfp8_native_moe's unguarded lazy
    import of minimax_m3.amd.ops).  No kernel under nvidia/ or common/ is affected; outside
    vllm/models, the ROCm AITER sparse-MLA backend and the segmented attention it alone uses.
    """
    def folder(k):
        parts = k.file.split("/")
        platform = parts[3] if len(parts) > 4 and parts[1] == "models" else ""
        return platform if platform in ("amd", "xpu", "nvidia", "common") else "other"

    live = [k for k in entries.values() if k.role == "entry"]
    by = Counter((folder(k), k.rocm_only, bool(k.platform_note)) for k in live)
    assert by == {("amd", True, True): 73, ("amd", False, False): 21, ("xpu", True, True): 3,
                  ("nvidia", False, False): 116, ("common", False, False): 63,
                  ("other", False, False): 348, ("other", True, False): 2, ("other", True, True): 5}
    other = sorted({k.module for k in live if folder(k) == "other" and k.platform_note})
    assert other == ["vllm.v1.attention.backends.mla.rocm_aiter_mla_sparse",
                     "vllm.v1.attention.ops.segmented_attention"]
    assert "is imported only under `current_platform.is_xpu()` in vllm.models.deepseek_v4" in \
        entries["vllm.models.deepseek_v4.xpu.model:" + next(
            k.qualname for k in live if k.module == "vllm.models.deepseek_v4.xpu.model")].platform_note
