"""Cross-module launches, re-exports, indirect launchers and helpers."""
from __future__ import annotations

import pytest
from index_testutil import case_tree

from vkc.index.triton_scan import scan_triton


@pytest.fixture(scope="module")
def kernels():
    return {k.qualified: k for k in scan_triton(case_tree("crossmod"))}


@pytest.mark.parametrize("name, form", [
    ("cross_kernel", "grid"),            # from x import K
    ("mod_attr_kernel", "grid"),         # import x as K; K.k[grid]
    ("reexported_kernel", "grid"),       # through the package __init__
    ("indirect_kernel", "indirect"),     # launch_autotuned(kernel, grid, ...)
    ("relay_kernel", "indirect"),        # relay(k) -> launch_autotuned(k)
    ("ctx_kernel", "indirect"),          # Ctx().call_kernel(kernel, grid, ...)
])
def test_launched_from_other_module(kernels, name, form):
    k = kernels[f"vllm.ops.defs:{name}"]
    assert k.role == "entry"
    assert [(s.file, s.form, s.wrapper) for s in k.launch_sites] == [("vllm/layers/use.py", form, "forward")]


def test_helpers(kernels):
    assert kernels["vllm.ops.defs:shared_helper"].role == "helper"
    assert kernels["vllm.ops.defs:dup_helper"].role == "helper"
    assert kernels["vllm.ops.other:dup_helper"].role == "helper"
    assert kernels["vllm.ops.other:only_helper"].role == "helper"


def test_same_name_in_two_modules(kernels):
    a, b = kernels["vllm.ops.defs:dup_kernel"], kernels["vllm.ops.other:dup_kernel"]
    assert a.role == b.role == "entry"
    assert a.launch_sites[0].file == "vllm/ops/defs.py"
    assert b.launch_sites[0].file == "vllm/ops/other.py"
