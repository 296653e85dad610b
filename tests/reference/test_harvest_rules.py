"""vkc.reference.harvest_rules: the harvester on the less plain shapes of a kernel test.

A miniature tree (one kernel, its wrappers, tests): a comparison made by a helper of the test
module, the wrapper called inside the comparison, a fresh expected tensor written into by plain
statements, tolerances written as expressions, a wrapper returning a view of its output, a launch
with ``*x.stride()`` arguments, ``W(*args)`` of a tuple literal, W handed a copy of the expected value's
input -- and the refusals next to each rule.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from vkc.records import KernelEntry, LaunchSite
from vkc.reference.extract import extract_function
from vkc.reference.harvest import NoHarvest, harvest
from vkc.reference.harvest_rules import (
    compare_helpers,
    const_number,
    copy_of,
    fresh,
    literal_star,
    mutations,
    returned_name,
)
from vkc.reference.wrapper_map import wrapper_launch

KERNEL_PY = '''
import torch
import triton
import triton.language as tl
from vllm.ops.consts import OTHER

SCALE = 2.0

@triton.jit
def _relu_kernel(x_ptr, out_ptr, s, N, BLOCK: tl.constexpr):
    pass


def pos_part(x, s):
    out = torch.empty_like(x)
    _relu_kernel[(1,)](x, out, s, x.numel(), BLOCK=128)
    return out.reshape(-1)


def pos_part_opt(x, s=2.0, *, out=None):
    out = torch.empty_like(x)
    _relu_kernel[(1,)](x, out, s, x.numel(), BLOCK=128)
    return out


def pos_part_expr(x, s=SCALE * 2):
    out = torch.empty_like(x)
    _relu_kernel[(1,)](x, out, s, x.numel(), BLOCK=128)
    return out


def pos_part_const(x, s=SCALE, t=OTHER):
    out = torch.empty_like(x)
    _relu_kernel[(1,)](x, out, s, t, BLOCK=128)
    return out


def pos_part_strided(x, s):
    out = torch.empty_like(x)
    _relu_kernel[(1,)](x, out, *x.stride(), BLOCK=128)
    return out
'''

TEST_PY = '''
import torch
from vllm.ops.k import pos_part


def assert_bf16(got, ref, msg):
    """bf16 class tolerance."""
    torch.testing.assert_close(got.float(), ref.float(), rtol=1e-2, atol=1e-2, msg=lambda m: f"{msg}: {m}")


def assert_loose(got, ref, atol=0.5):
    torch.testing.assert_close(got, ref, rtol=0, atol=atol)


def _ulps(got, ref):
    bad = (got - ref).abs() > 1
    assert not bad.any()


def test_helper(n):
    x = torch.randn(n)
    out = pos_part(x, 1.0)
    assert_bf16(out, torch.relu(x), "pos_part")


def test_helper_default(n):
    x = torch.randn(n)
    out = pos_part(x, 1.0)
    assert_loose(out, torch.relu(x))


def test_custom_check(n):
    x = torch.randn(n)
    out = pos_part(x, 1.0)
    _ulps(out, torch.relu(x))


def test_inline(n):
    x = torch.randn(n)
    want = torch.relu(x)
    torch.testing.assert_close(pos_part(x, 1.0), want, rtol=2**-7, atol=0)


def test_fresh_write(n, dtype):
    x = torch.randn(n)
    expected = x.clone()
    expected[expected < 0] = 0
    out = pos_part(x, 1.0)
    torch.testing.assert_close(out, expected, rtol=0.008 if dtype == torch.bfloat16 else 1e-6, atol=0)


def test_alias_write(n):
    x = torch.randn(n)
    expected = x.view(-1)
    expected[expected < 0] = 0
    out = pos_part(x, 1.0)
    torch.testing.assert_close(out, expected)


def test_spread_args(n):
    x = torch.randn(n)
    args = (x, 1.0)
    want = torch.relu(*args[:1])
    out = pos_part(*args)
    torch.testing.assert_close(out, want)


def test_spread_rebound(n):
    x = torch.randn(n)
    args = (x, 1.0)
    x = x + 1
    out = pos_part(*args)
    torch.testing.assert_close(out, torch.relu(x))


def test_copy_in(n):
    x = torch.randn(n)
    x_in = x.clone()
    out = pos_part(x_in, 1.0)
    torch.testing.assert_close(out, torch.relu(x))


def test_copy_in_mutated(n):
    x = torch.randn(n)
    x_in = x.clone()
    x_in[0] = 1
    out = pos_part(x_in, 1.0)
    torch.testing.assert_close(out, torch.relu(x))


def test_none_argument(n):
    x = torch.randn(n)
    out = pos_part(x, None)
    torch.testing.assert_close(out, torch.relu(x))


def test_default_left(n):
    x = torch.randn(n)
    out = pos_part_opt(x)
    torch.testing.assert_close(out, torch.relu(x) * 2.0)


def test_default_const(n):
    x = torch.randn(n)
    out = pos_part_const(x)
    torch.testing.assert_close(out, torch.relu(x) * 2.0)


def test_default_expr(n):
    x = torch.randn(n)
    out = pos_part_expr(x)
    torch.testing.assert_close(out, torch.relu(x) * 2.0)


def test_loop_write(n):
    x = torch.randn(n)
    expected = x.clone()
    for i in range(n):
        expected[i] = max(expected[i], 0)
    out = pos_part(x, 1.0)
    torch.testing.assert_close(out, expected)
'''

KERNEL = "vllm.ops.k:_relu_kernel"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "vllm" / "ops").mkdir(parents=True)
    (tmp_path / "vllm" / "__init__.py").write_text("")
    (tmp_path / "vllm" / "ops" / "__init__.py").write_text("")
    (tmp_path / "vllm" / "ops" / "k.py").write_text(KERNEL_PY)
    (tmp_path / "vllm" / "ops" / "consts.py").write_text("OTHER = 3\n")
    (tmp_path / "tests" / "kernels").mkdir(parents=True)
    (tmp_path / "tests" / "kernels" / "test_k.py").write_text(TEST_PY)
    return tmp_path


def _site(wrapper: str) -> tuple[KernelEntry, LaunchSite]:
    lines = KERNEL_PY.splitlines()
    start = lines.index(next(ln for ln in lines if ln.startswith(f"def {wrapper}(")))
    line = next(i for i in range(start, len(lines)) if "_relu_kernel[" in lines[i]) + 1
    site = LaunchSite("vllm/ops/k.py", line, wrapper, "grid")
    return KernelEntry("triton", "_relu_kernel", "_relu_kernel", "vllm/ops/k.py", 7, 9, module="vllm.ops.k",
                       launch_sites=(site,), qualified=KERNEL), site


def _harvest(root: Path, test: str, params: dict[str, str] | None = None, wrapper: str = "pos_part"):
    entry, site = _site(wrapper)
    w = wrapper_launch(root, entry, site)
    assert not isinstance(w, str), w
    return harvest(root, KERNEL, w, "tests/kernels/test_k.py", test, params or {"n": "8"})


def _run(root: Path, h, *args):
    ex = extract_function(root, h.spec.file, h.node, {})
    ns: dict = {"torch": torch}
    exec(compile("\n".join(ex.imports) + "\n" + ex.code, "ref", "exec"), ns)  # noqa: S102 (the extracted reference)
    return ex, ns[ex.entry](*args)


def _line(text: str) -> int:
    return TEST_PY.splitlines().index(next(ln for ln in TEST_PY.splitlines() if text in ln)) + 1


def test_a_comparison_helper_is_its_comparison(tree):
    h = _harvest(tree, "test_helper")
    assert [o.param for o in h.spec.outputs] == ["out_ptr"] and dict(h.spec.args) == {"x": "a['x_ptr']"}
    # the helper's own tolerances, from the helper's line
    assert h.tolerances == (("out_ptr", (("default", 1e-2, 1e-2),), f"test: tests/kernels/test_k.py:{_line('rtol=1e-2')}"),)
    _ex, got = _run(tree, h, torch.tensor([-1.0, 2.0]))
    assert torch.equal(got, torch.tensor([0.0, 2.0]))
    # a parameter the call leaves out takes the helper's default
    d = _harvest(tree, "test_helper_default")
    assert d.tolerances[0][1] == (("default", 0.5, 0.0),)


def test_helpers_are_only_one_comparison_of_two_parameters():
    mod = ast.parse(TEST_PY)
    helpers = compare_helpers(mod, frozenset({"assert_close"}))
    assert set(helpers) == {"assert_bf16", "assert_loose"}      # _ulps computes its own check: not one
    assert helpers["assert_bf16"].cast and (helpers["assert_bf16"].got, helpers["assert_bf16"].want) == (0, 1)


def test_custom_check_is_not_a_comparison(tree):
    with pytest.raises(NoHarvest, match="compares nothing"):
        _harvest(tree, "test_custom_check")


def test_the_wrapper_called_inside_the_comparison(tree):
    h = _harvest(tree, "test_inline")
    (out,) = h.spec.outputs
    assert (out.param, out.poison) == ("out_ptr", True)        # W's torch.empty_like, returned as a view
    assert h.tolerances[0][1] == (("default", 0.0, 2 ** -7),)
    _ex, got = _run(tree, h, torch.tensor([-3.0, 1.0]))
    assert torch.equal(got, torch.tensor([0.0, 1.0]))


def test_a_fresh_expected_tensor_written_into(tree):
    h = _harvest(tree, "test_fresh_write", {"n": "8", "dtype": "torch.bfloat16"})
    ex, got = _run(tree, h, torch.tensor([-3.0, 1.0]))
    assert "expected[expected < 0] = 0" in ex.code and torch.equal(got, torch.tensor([0.0, 1.0]))
    assert h.tolerances[0][1] == (("default", 0.0, 0.008),)    # the choice on the test's dtype
    f32 = _harvest(tree, "test_fresh_write", {"n": "8", "dtype": "torch.float32"})
    assert f32.tolerances[0][1] == (("default", 0.0, 1e-6),)
    # no dtype value: the choice becomes a table by dtype, which the check reads by the output's dtype (here the
    # test's x is float32 whatever its dtype parameter: the float32 output gets the else branch, 1e-6)
    by_dtype = _harvest(tree, "test_fresh_write", {"n": "8"})
    assert by_dtype.tolerances[0][1] == (("bfloat16", 0.0, 0.008), ("default", 0.0, 1e-6))


@pytest.mark.parametrize("test", ["test_alias_write", "test_loop_write"])
def test_writes_into_a_view_or_in_a_loop_refuse(tree, test):
    with pytest.raises(NoHarvest, match="expected is not assigned by plain top-level statements"):
        _harvest(tree, test)


def test_spread_of_a_tuple_literal(tree):
    h = _harvest(tree, "test_spread_args")
    assert dict(h.spec.args) == {"x": "a['x_ptr']"} and h.spec.requires == (("s", 1.0),)
    _ex, got = _run(tree, h, torch.tensor([-1.0, 3.0]))
    assert torch.equal(got, torch.tensor([0.0, 3.0]))
    # x rebound after the literal: the tuple holds the old x, not spread
    with pytest.raises(NoHarvest, match=r"\*args/\*\*kwargs"):
        _harvest(tree, "test_spread_rebound")


def test_the_original_of_a_copy_the_wrapper_receives(tree):
    h = _harvest(tree, "test_copy_in")
    assert dict(h.spec.args) == {"x": "a['x_ptr']"}
    with pytest.raises(NoHarvest, match="x is made by randn"):     # the copy is changed before the call
        _harvest(tree, "test_copy_in_mutated")


def test_a_none_argument_requires_none_in_the_launch(tree):
    from vkc.reference.launch import LaunchFacts, check_launch

    h = _harvest(tree, "test_none_argument")
    assert h.spec.requires == (("s", None),)
    tensors = frozenset({"x_ptr", "out_ptr"})
    params = frozenset({"x_ptr", "out_ptr", "s", "N"})
    assert check_launch(h.spec, [LaunchFacts("SMALL", {"s": None}, tensors, params)]) is None
    assert "holds only for s=None" in (check_launch(h.spec, [LaunchFacts("SMALL", {"s": 1.0}, tensors, params)])
                                       or "")


def test_a_parameter_left_at_its_default_is_a_requirement(tree):
    h = _harvest(tree, "test_default_left", wrapper="pos_part_opt")
    assert h.spec.requires == (("s", 2.0),)      # out=None is rebound by the wrapper: not the launch's value
    # module constants (the wrapper's own, or one imported from a vllm module) stand for their literal
    assert _harvest(tree, "test_default_const", wrapper="pos_part_const").spec.requires == (("s", 2.0), ("N", 3))
    with pytest.raises(NoHarvest, match="at its default SCALE \\* 2"):
        _harvest(tree, "test_default_expr", wrapper="pos_part_expr")


def test_rule_helpers():
    e = lambda text: ast.parse(text, mode="eval").body
    assert const_number(e("2**-7")) == 2 ** -7 and const_number(e("-1e-3 * 2")) == -2e-3
    assert const_number(e("x"), lambda n: 0.5) == 0.5 and const_number(e("1 / 0")) is None
    assert const_number(e("1e-2 if dtype == torch.float16 else 0"), None, {"dtype": "torch.float16"}) == 1e-2
    assert const_number(e("1e-2 if dtype != torch.float16 else 0"), None, {"dtype": "torch.float16"}) == 0
    assert const_number(e("1e-2 if n > 4 else 0"), None, {"n": "8"}) is None
    assert fresh(e("x[idx].clone()")) and fresh(e("torch.zeros(4).float()")) and not fresh(e("x.float()"))
    assert not fresh(e("x.view(-1)"))
    body = ast.parse("e = x.clone()\ne[0] = 1\ny = 2\ne.clamp_(min=0)\nfor i in r:\n    e[i] = 0\n").body
    assert mutations(body, "e", 0, 4) == [1, 3] and mutations(body, "e", 0, 5) is None
    assert returned_name(e("out.reshape(-1).contiguous()")) == "out" and returned_name(e("out.to(d)")) is None
    assert copy_of(e("x.clone().detach()")) == "x" and copy_of(e("x")) is None and copy_of(e("x.float()")) is None
    assert len(literal_star(e("(a, b)"), False) or []) == 2 and literal_star(e("{'k': a}"), True)
    assert literal_star(e("(a, *b)"), False) is None and literal_star(e("{k: a}"), True) is None


def test_a_launch_with_star_arguments_maps_the_positions_before_the_star(tree):
    entry, site = _site("pos_part_strided")
    w = wrapper_launch(tree, entry, site)
    assert not isinstance(w, str), w
    assert w.to_kernel == {"x": "x_ptr", "out": "out_ptr"}    # s and N: after *x.stride(), positions unknown
