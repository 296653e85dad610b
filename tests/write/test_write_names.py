"""Kernel name -> file stem mapping (vkc.write.names)."""
from __future__ import annotations

import pytest

from vkc.errors import KernelNameError
from vkc.write import check_kernel_name, safe_stem

MAPPING = [
    ("rms_norm_kernel", "rms_norm_kernel"),
    ("FusedQKVRMSNormKernel.kernel", "FusedQKVRMSNormKernel.kernel"),
    ("vllm.v1.attention.ops.prefix_prefill:_fwd_kernel", "vllm.v1.attention.ops.prefix_prefill--_fwd_kernel"),
    ("csrc/layernorm_kernels.cu:rms_norm_kernel", "csrc.layernorm_kernels.cu--rms_norm_kernel"),
    ("csrc/x.cu:k@120", "csrc.x.cu--k@120"),
    ("csrc/moe/topk-softmax_kernels.cu:topkGating", "csrc.moe.topk-softmax_kernels.cu--topkGating"),
    ("_private_kernel", "_private_kernel"),
]

REJECTED = [
    "", "..", "../evil", "a/../b", "/abs", "/etc/passwd:k", "a\x00b", "a\\b", "a\nb", "\x7f",
    ".hidden", "./k", "a b", "k;rm", "k*", "1abc", "csrc/x.cu:", ":k", "x" * 201,
]


@pytest.mark.parametrize("name,stem", MAPPING)
def test_mapping(name: str, stem: str) -> None:
    assert check_kernel_name(name) == name
    assert safe_stem(name) == stem
    assert "/" not in stem and "\\" not in stem


@pytest.mark.parametrize("name", REJECTED)
def test_rejected(name: str) -> None:
    with pytest.raises(KernelNameError) as exc:
        safe_stem(name)
    assert "\n" not in exc.value.message and exc.value.hint


def test_distinct_names_distinct_stems() -> None:
    stems = [safe_stem(n) for n, _ in MAPPING]
    assert len(set(stems)) == len(stems)
