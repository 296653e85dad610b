"""Platform-conditional definitions: one entry per name, the CUDA branch wins."""
from __future__ import annotations

from index_testutil import case_tree

from vkc.index.triton_scan import scan_triton


def _body_comment(tree, k) -> str:
    lines = (tree.root / k.file).read_text().splitlines()
    return lines[k.end_line - 1].split("#")[-1].strip()


def test_cuda_branch_wins():
    tree = case_tree("platform")
    ks = {k.qualname: k for k in scan_triton(tree)}
    assert sorted(ks) == ["negated", "rocm_kernel", "round_it", "softplus", "user_kernel"]
    assert _body_comment(tree, ks["round_it"]) == "cuda"          # if rocm / elif xpu / else
    assert _body_comment(tree, ks["negated"]) == "cuda"           # if not is_rocm()
    assert _body_comment(tree, ks["softplus"]) == "triton3"       # if TRITON3 / else
    for name in ("round_it", "negated", "softplus"):
        assert ks[name].role == "helper"
        assert not ks[name].rocm_only
    assert ks["rocm_kernel"].rocm_only and ks["rocm_kernel"].role == "entry"
    assert ks["user_kernel"].role == "entry"
