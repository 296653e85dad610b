"""vkc.testtrace.interp: earlier launches run under Triton's interpreter only while the state is real."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
triton = pytest.importorskip("triton")
tl = pytest.importorskip("triton.language")

from vkc.testtrace.interp import Interpreter


@triton.jit
def _twice(x):
    return x * 2


@triton.jit
def _fill_kernel(out_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, _twice(offs) + 1, mask=offs < n)


@triton.jit
def _bad_kernel(out_ptr, BLOCK: tl.constexpr):
    tl.store(out_ptr + tl.arange(0, BLOCK), tl.load(out_ptr + 10**12 + tl.arange(0, BLOCK)))


def test_a_clean_launch_runs_and_writes_real_contents() -> None:
    out = torch.full((10,), -7, dtype=torch.int32)
    it = Interpreter()
    assert it.run(_fill_kernel, "fill", (out, 10), {"BLOCK": 4, "num_warps": 4}, (3,), [out], {})
    assert out.tolist() == [2 * i + 1 for i in range(10)]
    assert it.ran == ["fill"] and it.dirty is None


def test_a_launch_not_run_makes_every_later_one_unrun() -> None:
    out = torch.zeros(10, dtype=torch.int32)
    it = Interpreter(max_programs=2)
    assert not it.run(_fill_kernel, "fill", (out, 10), {"BLOCK": 4}, (3,), [out], {})
    assert "3 programs" in (it.dirty or "")
    assert not it.run(_fill_kernel, "fill", (out, 10), {"BLOCK": 4}, (1,), [out], {})   # small, but dirty
    assert out.tolist() == [0] * 10 and it.ran == []


def test_a_stand_in_that_ran_before_keeps_it_unrun() -> None:
    out = torch.zeros(4, dtype=torch.int32)
    it = Interpreter()
    assert not it.run(_fill_kernel, "fill", (out, 4), {"BLOCK": 4}, (1,), [out], {123: ["_C::op"]})
    assert "stand-in" in (it.dirty or "") and out.tolist() == [0] * 4


def test_a_failing_launch_is_unrun_and_dirty() -> None:
    out = torch.zeros(4, dtype=torch.int32)
    it = Interpreter()
    assert not it.run(_bad_kernel, "bad", (out,), {"BLOCK": 4}, (1,), [out], {})
    assert "failed under the interpreter" in (it.dirty or "")


def test_a_meta_tensor_is_not_run() -> None:
    out = torch.zeros(4, dtype=torch.int32, device="meta")
    it = Interpreter()
    assert it.why_not((1,), [out], {}) == "a tensor argument is not on the CPU"
