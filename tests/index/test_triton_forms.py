"""Launch forms, decorator shapes and roles (tests/data/index/forms)."""
from __future__ import annotations

import pytest
from index_testutil import case_tree

from vkc.index.triton_scan import scan_triton


@pytest.fixture(scope="module")
def kernels():
    return {k.qualified: k for k in scan_triton(case_tree("forms"))}


def _forms(k):
    return sorted(s.form for s in k.launch_sites)


@pytest.mark.parametrize("qualified, form, wrapper", [
    ("vllm.ops.kernels:grid_kernel", "grid", "launch_grid"),
    ("vllm.ops.kernels:alias_a", "grid", "launch_alias"),
    ("vllm.ops.kernels:alias_b", "grid", "launch_alias"),
    ("vllm.ops.kernels:dict_a", "grid", "launch_dict"),
    ("vllm.ops.kernels:dict_b", "grid", "launch_dict"),
    ("vllm.ops.kernels:warm_kernel", "warmup", "launch_warmup"),
    ("vllm.ops.kernels:wrapped_kernel", "grid", "launch_wrapped"),
    ("vllm.ops.kernels:disp_kernel", "dispatcher", "dispatch"),
    ("vllm.ops.kernels:tuned_kernel", "grid", "launch_more"),
    ("vllm.ops.kernels:bare_jit_kernel", "grid", "launch_more"),
    ("vllm.ops.kernels:aliased_module_kernel", "grid", "launch_more"),
    ("vllm.ops.kernels:gluon_kernel", "grid", "launch_more"),
    ("vllm.ops.kernels:_make.inner", "grid", "launch_more"),
    ("vllm.ops.classes:NormKernel.kernel", "launcher_class", "NormKernel.__call__"),
    ("vllm.ops.classes:_override_kernel", "launcher_class", "AliasKernel.__call__"),
    ("vllm.ops.classes:_self_kernel", "grid", "SelfLaunch.run"),
])
def test_launch_form(kernels, qualified, form, wrapper):
    k = kernels[qualified]
    assert k.role == "entry"
    assert k.lang == "triton"
    assert [(s.form, s.wrapper) for s in k.launch_sites] == [(form, wrapper)]
    site = k.launch_sites[0]
    assert site.file == k.file
    assert site.text and len(site.text.splitlines()) <= 3


def test_launch_site_text_and_line(kernels):
    site = kernels["vllm.ops.kernels:grid_kernel"].launch_sites[0]
    assert site.text == "grid_kernel[(x.numel(),)](x, BLOCK=64)"
    assert site.line == 101
    disp = kernels["vllm.ops.kernels:disp_kernel"].launch_sites[0]
    assert disp.text.startswith("triton_kernel_dispatcher_with_warmup(kernel=disp_kernel")


def test_launcher_class_attribute_and_override(kernels):
    # kernel = staticmethod(_alias_target) plus kernel=(A if c else B) in the launch spec
    k = kernels["vllm.ops.classes:_alias_target"]
    assert _forms(k) == ["launcher_class", "launcher_class"]
    assert {s.wrapper for s in k.launch_sites} == {"AliasKernel.__call__"}


def test_roles(kernels):
    assert kernels["vllm.ops.kernels:helper_fn"].role == "helper"
    assert kernels["vllm.ops.kernels:helper_fn"].launch_sites == ()
    assert kernels["vllm.ops.kernels:orphan_kernel"].role == "orphan"


def test_only_triton_and_gluon_jit(kernels):
    names = {k.name for k in kernels.values()}
    assert "not_a_triton_kernel" not in names           # @torch.jit.script
    assert len(kernels) == 19


def test_entry_fields(kernels):
    k = kernels["vllm.ops.kernels:tuned_kernel"]
    assert k.name == "tuned_kernel" and k.qualname == "tuned_kernel"
    assert k.module == "vllm.ops.kernels" and k.file == "vllm/ops/kernels.py"
    assert k.decorators == (
        'triton.heuristics({"EVEN": lambda args: args["n"] % 2 == 0})',
        'triton.autotune(configs=[triton.Config({"BLOCK": 64})], key=["n"])',
        'triton.jit(do_not_specialize=["n"])',
    )
    src = (case_tree("forms").root / k.file).read_text().splitlines()
    assert src[k.line - 1].startswith("@triton.heuristics")     # line = first decorator
    assert src[k.end_line - 1].strip() == "pass"
    m = kernels["vllm.ops.classes:NormKernel.kernel"]
    assert m.name == "kernel" and m.qualname == "NormKernel.kernel"
    assert m.decorators == ("staticmethod", "triton.jit")
    assert kernels["vllm.ops.kernels:gluon_kernel"].decorators == ("gluon.jit",)
