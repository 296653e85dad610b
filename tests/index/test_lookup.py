"""Kernel name resolution: bare, qualified, ambiguous, unknown, path-like."""
from __future__ import annotations

import pytest
from index_testutil import case_tree

from vkc.errors import AmbiguousKernelError, KernelLookupError, KernelNameError
from vkc.index import build_index, lookup
from vkc.records import KernelEntry, KernelIndex


@pytest.fixture(scope="module")
def index() -> KernelIndex:
    return build_index(case_tree("crossmod"), use_cache=False)


@pytest.fixture(scope="module")
def mixed() -> KernelIndex:
    """A hand-made index with both languages."""
    def k(lang, name, qualified, role="entry", qualname=None, line=1):
        return KernelEntry(lang=lang, name=name, qualname=qualname or name, file=qualified.split(":")[0],
                           line=line, end_line=line + 1, role=role, qualified=qualified)
    ks = (
        k("cuda", "rms_norm_kernel", "csrc/layernorm_kernels.cu:rms_norm_kernel", qualname="vllm::rms_norm_kernel"),
        k("cuda", "over", "csrc/x.cu:over@10", line=10),
        k("cuda", "over", "csrc/x.cu:over@20", line=20),
        k("triton", "kernel", "vllm.a:FusedQKVRMSNormKernel.kernel", qualname="FusedQKVRMSNormKernel.kernel"),
        k("triton", "kernel", "vllm.b:Other.kernel", qualname="Other.kernel"),
        k("triton", "both", "vllm.a:both"),
        k("cuda", "both", "csrc/both.cu:both"),
    )
    return KernelIndex(tree=case_tree("crossmod"), kernels=ks)


def test_unique_bare_entry(index):
    assert lookup(index, "cross_kernel").qualified == "vllm.ops.defs:cross_kernel"


def test_bare_helper_resolves(index):
    k = lookup(index, "only_helper")
    assert (k.qualified, k.role) == ("vllm.ops.other:only_helper", "helper")


def test_entry_wins_over_helper_of_same_name(index):
    # dup_kernel is ambiguous, but other_kernel is one entry
    assert lookup(index, "other_kernel").role == "entry"


def test_ambiguous_lists_all_candidates(index):
    with pytest.raises(AmbiguousKernelError) as exc:
        lookup(index, "dup_kernel")
    assert "vllm.ops.defs:dup_kernel, vllm.ops.other:dup_kernel" in exc.value.message
    with pytest.raises(AmbiguousKernelError) as exc:
        lookup(index, "dup_helper")
    assert exc.value.message.endswith("vllm.ops.defs:dup_helper, vllm.ops.other:dup_helper")


def test_ambiguous_orders_entries_before_helpers():
    def k(q, role):
        return KernelEntry(lang="triton", name="k", qualname="k", file="f", line=1, end_line=2,
                           role=role, qualified=q)
    idx = KernelIndex(tree=case_tree("crossmod"), kernels=(
        k("vllm.a:k", "helper"), k("vllm.z:k", "entry"), k("vllm.b:k", "entry"), k("vllm.c:k", "orphan")))
    with pytest.raises(AmbiguousKernelError) as exc:
        lookup(idx, "k")
    assert exc.value.message.endswith(": vllm.b:k, vllm.z:k, vllm.a:k, vllm.c:k")


def test_qualified_always_resolves(index):
    assert lookup(index, "vllm.ops.other:dup_kernel").qualified == "vllm.ops.other:dup_kernel"
    assert lookup(index, "vllm.ops.defs:dup_helper").role == "helper"
    assert lookup(index, "vllm/ops/defs.py:dup_kernel").qualified == "vllm.ops.defs:dup_kernel"


def test_unknown_suggests_closest(index):
    with pytest.raises(KernelLookupError) as exc:
        lookup(index, "cross_kernal")
    assert not isinstance(exc.value, AmbiguousKernelError)
    assert "cross_kernel" in exc.value.hint
    with pytest.raises(KernelLookupError) as exc:
        lookup(index, "vllm.ops.defs:cross_kernal")
    assert "vllm.ops.defs:cross_kernel" in exc.value.hint


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs/kernel", "a\\b", "x\x00y", ""])
def test_path_like_rejected(index, bad):
    with pytest.raises(KernelNameError):
        lookup(index, bad)


def test_class_member_and_cuda_forms(mixed):
    assert lookup(mixed, "FusedQKVRMSNormKernel.kernel").qualified == "vllm.a:FusedQKVRMSNormKernel.kernel"
    assert lookup(mixed, "vllm.b:Other.kernel").qualified == "vllm.b:Other.kernel"
    with pytest.raises(AmbiguousKernelError):
        lookup(mixed, "kernel")
    assert lookup(mixed, "rms_norm_kernel").lang == "cuda"
    assert lookup(mixed, "csrc/layernorm_kernels.cu:rms_norm_kernel").name == "rms_norm_kernel"
    assert lookup(mixed, "csrc/x.cu:over@20").line == 20
    with pytest.raises(AmbiguousKernelError) as exc:
        lookup(mixed, "csrc/x.cu:over")
    assert "csrc/x.cu:over@10, csrc/x.cu:over@20" in exc.value.message


def test_lang_filter(mixed):
    with pytest.raises(AmbiguousKernelError):
        lookup(mixed, "both")
    assert lookup(mixed, "both", lang="cuda").qualified == "csrc/both.cu:both"
    assert lookup(mixed, "both", lang="triton").qualified == "vllm.a:both"
    with pytest.raises(KernelLookupError):
        lookup(mixed, "rms_norm_kernel", lang="triton")
