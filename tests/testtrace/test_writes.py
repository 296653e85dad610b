"""Which pointer parameters a Triton kernel may write: an earlier launch (recorded, not run) spoils
an integer buffer only through those (vkc.testtrace.writes)."""
from __future__ import annotations

import triton
import triton.language as tl

from vkc.testtrace.writes import written_params, written_params_of


@triton.jit
def _store_helper(p, v):
    tl.store(p, v)


@triton.jit
def _gather_kernel(out_ptr, in_ptr, idx_ptr, counts_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    idx = tl.load(idx_ptr + offs, mask=offs < n)          # read: the loaded value is not idx_ptr
    x = tl.load(in_ptr + idx)
    dst = out_ptr + offs
    tl.store(dst, x)
    tl.atomic_add(counts_ptr + idx, 1)                    # written through an index read from idx_ptr


@triton.jit
def _via_helper(a_ptr, b_ptr):
    _store_helper(b_ptr + 1, tl.load(a_ptr))


def _tensor_params(jit_fn) -> set[str]:
    return set(written_params_of(jit_fn)) - {"BLOCK", "n"}


def test_stores_and_atomics_write_loads_do_not():
    assert _tensor_params(_gather_kernel) == {"out_ptr", "counts_ptr"}


def test_jit_helper_is_followed():
    assert _tensor_params(_via_helper) == {"b_ptr"}


def test_unknown_callee_and_descriptor_are_conservative():
    src = '''
def k(a_ptr, b_ptr, c_ptr, d_ptr):
    some_helper(a_ptr)
    desc = tl.make_tensor_descriptor(b_ptr, shape=[4], strides=[1], block_shape=[4])
    desc.store([0], tl.load(c_ptr))
    x = tl.load(d_ptr)
'''
    assert written_params(src, ["a_ptr", "b_ptr", "c_ptr", "d_ptr"]) == {"a_ptr", "b_ptr"}


def test_unparsable_source_writes_everything():
    assert written_params("def k(a, b:\n", ["a", "b"]) == {"a", "b"}
