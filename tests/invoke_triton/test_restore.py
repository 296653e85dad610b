"""Index buffers a kernel reads and updates in place are restored before every timed launch."""
from __future__ import annotations

from vkc.invoke.triton.plan import Buffer, InitSpec, LaunchConfig, Scalar, TensorView
from vkc.invoke.triton.restore import read_written_params, restored_buffers

SRC = '''
import triton
import triton.language as tl

@triton.jit
def k(num_ptr, out_ptr, cnt_ptr, x_ptr, BLOCK: tl.constexpr):
    i = tl.program_id(0)
    n = tl.load(num_ptr + i)
    tl.store(num_ptr + i, n + 1)
    tl.store(out_ptr + n, tl.load(x_ptr + i))
    tl.atomic_add(cnt_ptr, 1)
    c = tl.load(cnt_ptr)
'''


def test_params_loaded_and_stored_are_found():
    assert read_written_params(SRC, "k") == frozenset({"num_ptr", "cnt_ptr"})
    assert read_written_params(SRC, "missing") == frozenset()
    assert read_written_params("def (:", "k") == frozenset()


def _cfg(dtype: str) -> LaunchConfig:
    bufs = (Buffer("num", (4,), dtype, InitSpec("const", (0,))), Buffer("x", (4,), "float32", InitSpec("randn")))
    args = (TensorView("num_ptr", "num", (4,), (1,), 0, dtype), TensorView("x_ptr", "x", (4,), (1,), 0, "float32"),
            Scalar("n", 4))
    return LaunchConfig((4,), 4, 3, {}, {}, bufs, args, 0, None, 0.0, {})


def test_only_integer_buffers_are_restored_and_none_renders_nothing():
    rw = frozenset({"num_ptr", "x_ptr"})
    assert restored_buffers({"FULL": _cfg("int32"), "SMALL": _cfg("int32")}, rw) == {"FULL": ["num"], "SMALL": ["num"]}
    assert restored_buffers({"FULL": _cfg("float32")}, rw) == {}
