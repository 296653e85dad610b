"""vkc.reference.harvest: a reference and its mapping derived from a vLLM test's own comparison.

Fast tests on a miniature tree (a kernel, its wrapper, tests that compare the wrapper's result):
the derived mapping, the tolerances, the extraction, every refusal.  The real tree's harvest is
checked in tests/reference/test_check.py (the interpreter check, with planted bugs).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from vkc.records import KernelEntry, LaunchSite
from vkc.reference.extract import Refused, extract_function
from vkc.reference.harvest import NoHarvest, harvest, param_value
from vkc.reference.wrapper_map import wrapper_launch

KERNEL_PY = '''
import torch
import triton
import triton.language as tl


@triton.jit
def _scale_kernel(x_ptr, out_ptr, s, N, BLOCK: tl.constexpr, NEG: tl.constexpr):
    pass


def scale(x, s, neg=False, out=None):
    x = x.contiguous()
    if out is None:
        out = torch.empty_like(x)
    _scale_kernel[(1,)](x, out, s, x.numel(), BLOCK=128, NEG=neg, **{})
    return out


def scale_pair(x, s):
    flat = x.view(-1)
    out = torch.empty_like(flat)
    _scale_kernel[(1,)](flat, out, s, flat.numel(), BLOCK=128, NEG=False)
    return out, flat
'''

TEST_PY = '''
import torch
from vllm.ops.k import scale

if HAS_HELPERS:
    from tests.kernels.helpers import _double
try:
    from tests.kernels.helpers import _triple
except ImportError:
    from tests.kernels.other import _triple

EPS = 1e-3


def _ref(x, s):
    return x.float() * s


def test_scale(n):
    x = torch.randn(n)
    out = scale(x, 2.0)
    want = _ref(x, 2.0)
    torch.testing.assert_close(out, want, atol=EPS, rtol=1e-2)


def test_inplace(n, factor):
    x = torch.randn(n)
    buf = torch.empty(n)
    x_copy = x.clone()
    scale(x, factor, out=buf)
    torch.testing.assert_close(buf.float(), _ref(x_copy, factor))
    assert torch.equal(x, x_copy)


def test_random_want(n):
    x = torch.randn(n)
    out = scale(x, 2.0)
    y = torch.randn(n)
    torch.testing.assert_close(out, _ref(y, 2.0), atol=0, rtol=0)


def test_literal_want():
    x = torch.ones(4)
    out = scale(x, 2.0)
    expected = torch.tensor([2.0, 2.0, 2.0, 2.0])
    torch.testing.assert_close(out, expected)


def test_only_identity(n):
    x = torch.randn(n)
    x_copy = x.clone()
    scale(x, 2.0)
    assert torch.equal(x, x_copy)


def test_reads_result(n):
    x = torch.randn(n)
    out = scale(x, 2.0)
    twice = out * 1
    torch.testing.assert_close(out, twice)


def test_rebound(n):
    x = torch.randn(n)
    out = scale(x, 2.0)
    want = _ref(x, 2.0)
    want = want + 1
    torch.testing.assert_close(out, want - 1)


def test_branch_rebound(n):
    x = torch.randn(n)
    out = scale(x, 2.0)
    want = _ref(x, 2.0)
    if n > 4:
        want = want + 1
    torch.testing.assert_close(out, want)


def test_input_rebound(n):
    x = torch.randn(n)
    want = _ref(x, 2.0)
    x = x + 1
    out = scale(x, 2.0)
    torch.testing.assert_close(out, want)


@deco([k for k in (1, 2)])
def test_comprehension_scopes(n):
    x = torch.randn(n)
    k = 2.0
    out = scale(x, 2.0)
    _names = [k for k in range(3)]
    torch.testing.assert_close(out, _ref(x, k))


def test_dtype_table(n, dtype):
    x = torch.randn(n, dtype=dtype)
    out = scale(x, 2.0)
    atol = {torch.float32: 1e-4, torch.bfloat16: 1e-2}[dtype]
    rtol, _slack = {torch.float32: (1e-5, 0), torch.bfloat16: (2e-2, 0)}[dtype]
    torch.testing.assert_close(out, _ref(x, 2.0), atol=atol, rtol=rtol)


def test_dtype_choice(n, dtype):
    x = torch.randn(n, dtype=dtype)
    out = scale(x, 2.0)
    torch.testing.assert_close(out, _ref(x, 2.0), rtol=0.008 if dtype == torch.bfloat16 else 1e-6,
                               atol=1e-7 if dtype is not torch.float16 else 1e-3)


def test_two_choices(n, dtype, other):
    x = torch.randn(n, dtype=dtype)
    out = scale(x, 2.0)
    torch.testing.assert_close(out, _ref(x, 2.0), rtol=0.008 if dtype == torch.bfloat16 else 1e-6,
                               atol=1e-7 if other == torch.float16 else 1e-3)


def test_guarded_import(n):
    x = torch.randn(n)
    out = scale(x, 2.0)
    torch.testing.assert_close(out, _double(x))


def test_ambiguous_import(n):
    x = torch.randn(n)
    out = scale(x, 3.0)
    torch.testing.assert_close(out, _triple(x))


def test_object_param(n, cfg):
    x = torch.randn(n)
    out = scale(x, 2.0)
    torch.testing.assert_close(out, _ref(x, cfg.factor))


def test_tuple_param(n, cfg):
    x = torch.randn(n)
    out = scale(x, 2.0)
    torch.testing.assert_close(out, _ref(x, cfg[0]))
'''

HELPERS_PY = '''
def _double(x):
    return x * 2.0


def _triple(x):
    return x * 3.0
'''

KERNEL = "vllm.ops.k:_scale_kernel"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "vllm" / "ops").mkdir(parents=True)
    (tmp_path / "vllm" / "__init__.py").write_text("")
    (tmp_path / "vllm" / "ops" / "__init__.py").write_text("")
    (tmp_path / "vllm" / "ops" / "k.py").write_text(KERNEL_PY)
    (tmp_path / "tests" / "kernels").mkdir(parents=True)
    (tmp_path / "tests" / "kernels" / "test_k.py").write_text(TEST_PY)
    (tmp_path / "tests" / "kernels" / "helpers.py").write_text(HELPERS_PY)
    (tmp_path / "tests" / "kernels" / "other.py").write_text(HELPERS_PY)
    return tmp_path


def _entry(wrapper: str = "scale") -> tuple[KernelEntry, LaunchSite]:
    line = KERNEL_PY.splitlines().index(next(ln for ln in KERNEL_PY.splitlines() if "_scale_kernel[" in ln)) + 1
    site = LaunchSite("vllm/ops/k.py", line, wrapper, "grid")
    return KernelEntry("triton", "_scale_kernel", "_scale_kernel", "vllm/ops/k.py", 7, 9, module="vllm.ops.k",
                       launch_sites=(site,), qualified=KERNEL), site


def _harvest(root: Path, test: str, params: dict[str, str] | None = None, wrapper: str = "scale"):
    entry, site = _entry(wrapper)
    w = wrapper_launch(root, entry, site)
    assert not isinstance(w, str), w
    return harvest(root, KERNEL, w, "tests/kernels/test_k.py", test, params)


def test_wrapper_mapping(tree):
    entry, site = _entry()
    w = wrapper_launch(tree, entry, site)
    assert not isinstance(w, str)
    # x.contiguous() keeps the caller's values; out is W's own uninitialised allocation
    assert w.to_kernel == {"x": "x_ptr", "out": "out_ptr", "s": "s", "neg": "NEG"}
    assert w.empty == frozenset({"out"})
    pair = wrapper_launch(tree, entry, LaunchSite("vllm/ops/k.py", site.line, "scale_pair", "grid"))
    assert not isinstance(pair, str) and pair.to_kernel["x"] == "x_ptr" and pair.to_kernel["flat"] == "x_ptr"


def test_harvest_maps_test_tensors_to_kernel_parameters(tree):
    h = _harvest(tree, "test_scale")
    assert h.spec.args == (("x", "a['x_ptr']"),)              # 2.0 is a literal of the reference call
    # the test's constant reaches the kernel; neg, left at its default, reaches it as NEG=False
    assert h.spec.requires == (("s", 2.0), ("NEG", False))
    (out,) = h.spec.outputs
    assert (out.param, out.index, out.poison) == ("out_ptr", None, True)
    assert h.tolerances == (("out_ptr", (("default", 1e-3, 1e-2),), "test: tests/kernels/test_k.py:23"),)
    ex = extract_function(tree, h.spec.file, h.node, {})
    assert not ex.stubs and "# from tests/kernels/test_k.py:15\ndef _ref" in ex.code
    ns: dict = {"torch": torch}
    exec(compile("\n".join(ex.imports) + "\n" + ex.code, "ref", "exec"), ns)  # noqa: S102 (the extracted reference)
    x = torch.arange(4.0)
    assert torch.equal(ns[ex.entry](x), x * 2.0)


def test_inplace_output_and_test_parameters(tree):
    h = _harvest(tree, "test_inplace", {"n": "8", "factor": "3.0"})
    # buf: the test's torch.empty output (poisoned); x_copy = x.clone() is taken before the call
    assert [(o.param, o.poison) for o in h.spec.outputs] == [("out_ptr", True)]
    assert dict(h.spec.args) == {"x": "a['x_ptr']", "factor": "a['s']"}
    assert h.tolerances[0][2].startswith("torch.testing.assert_close defaults")
    assert h.tolerances[0][1] == (("default", 1e-5, 1.3e-6),)   # buf.float(): float32's defaults


@pytest.mark.parametrize("test, why", [
    ("test_random_want", "made by randn"),
    ("test_literal_want", "wrote out for its own inputs"),
    ("test_only_identity", "compares nothing"),
    ("test_reads_result", "after the wrapper produced"),
    ("test_branch_rebound", "not assigned by plain top-level statements"),
    ("test_input_rebound", "reads x bound otherwise than when the wrapper reads it"),
    ("test_dtype_table", "atol is not a literal"),     # no value for the test's dtype parameter
    ("test_two_choices", "atol is not a literal"),     # choices on two parameters: no one dtype table
])
def test_refusals(tree, test, why):
    with pytest.raises(NoHarvest, match=why):
        _harvest(tree, test, {"n": "8"})


def test_param_values():
    assert param_value("bfloat16") == "torch.bfloat16" and param_value("torch.float16") == "torch.float16"
    assert param_value("128") == "128" and param_value("'silu'") == "'silu'" and param_value("(1, 2)") == "(1, 2)"
    assert param_value("<function f>") is None
    assert ast.parse(param_value("1e-06") or "").body


def _run(root: Path, h, *args):
    ex = extract_function(root, h.spec.file, h.node, {})
    ns: dict = {"torch": torch}
    exec(compile("\n".join(ex.imports) + "\n" + ex.code, "ref", "exec"), ns)  # noqa: S102 (the extracted reference)
    return ex, ns[ex.entry](*args)


def test_rebinding_reads_the_reaching_assignment(tree):
    # want = _ref(x, 2.0); want = want + 1; compared against want - 1: both assignments, in order
    h = _harvest(tree, "test_rebound", {"n": "8"})
    x = torch.arange(4.0)
    _ex, got = _run(tree, h, x)
    assert torch.equal(got, x * 2.0)


def test_comprehension_and_decorator_names_are_their_own_scope(tree):
    h = _harvest(tree, "test_comprehension_scopes", {"n": "8"})
    assert dict(h.spec.args) == {"x": "a['x_ptr']"}
    _ex, got = _run(tree, h, torch.ones(3))
    assert torch.equal(got, torch.full((3,), 2.0))


def test_tolerance_from_a_dtype_table(tree):
    h = _harvest(tree, "test_dtype_table", {"n": "8", "dtype": "bfloat16"})
    assert h.tolerances[0][1] == (("default", 1e-2, 2e-2),)
    h32 = _harvest(tree, "test_dtype_table", {"n": "8", "dtype": "float32"})
    assert h32.tolerances[0][1] == (("default", 1e-4, 1e-5),)


def test_imports_guarded_by_module_level_blocks(tree):
    h = _harvest(tree, "test_guarded_import", {"n": "8"})
    ex, got = _run(tree, h, torch.ones(2))
    assert "# from tests/kernels/helpers.py:2\ndef _double" in ex.code and torch.equal(got, torch.full((2,), 2.0))
    # imported from two places in the try/except: not resolved
    amb = _harvest(tree, "test_ambiguous_import", {"n": "8"})
    with pytest.raises(Refused, match="_triple"):
        extract_function(tree, amb.spec.file, amb.node, {})


def test_object_parameter_is_not_its_id_tuple(tree):
    # a NamedTuple-like parameter shows only its fields in the test id: reading cfg.factor refuses,
    # indexing the tuple maps
    with pytest.raises(NoHarvest, match="attributes of the test parameter cfg"):
        _harvest(tree, "test_object_param", {"n": "8", "cfg": "(2.0, 1)"})
    h = _harvest(tree, "test_tuple_param", {"n": "8", "cfg": "(2.0, 1)"})
    assert dict(h.spec.args)["cfg"] == "(2.0, 1)"


def test_tolerance_chosen_by_the_dtype_parameter(tree):
    """``rtol=A if dtype == torch.bfloat16 else B`` with no value for ``dtype`` in this launch: one row per dtype the
    choices name, ``default`` for the else branches (tests/models/test_beam_numerics.py:125 states its tolerances
    so); a known value still picks its branch."""
    h = _harvest(tree, "test_dtype_choice", {"n": "8"})
    assert h.tolerances[0][1] == (("bfloat16", 1e-7, 0.008), ("float16", 1e-3, 1e-6), ("default", 1e-7, 1e-6))
    assert "by the test parameter dtype" in h.tolerances[0][2]
    h16 = _harvest(tree, "test_dtype_choice", {"n": "8", "dtype": "bfloat16"})
    assert h16.tolerances[0][1] == (("default", 1e-7, 0.008),)
