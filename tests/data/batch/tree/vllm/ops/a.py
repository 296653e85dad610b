# Batch fixture: a unique kernel, an ambiguous bare name (also in b.py), and a
# kernel whose extraction fails (it reads a module global that does not exist).
import torch
import triton
import triton.language as tl


@triton.jit
def add_one_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=mask) + 1, mask=mask)


@triton.jit
def dup_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.zeros([BLOCK], tl.float32), mask=offs < n)


@triton.jit
def broken_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.full([BLOCK], MISSING_GLOBAL, tl.float32), mask=offs < n)


def add_one(x: torch.Tensor) -> None:
    n = x.numel()
    add_one_kernel[(triton.cdiv(n, 128),)](x, n, BLOCK=128)


def zero(x: torch.Tensor) -> None:
    n = x.numel()
    dup_kernel[(triton.cdiv(n, 128),)](x, n, BLOCK=128)


def broken(x: torch.Tensor) -> None:
    n = x.numel()
    broken_kernel[(triton.cdiv(n, 128),)](x, n, BLOCK=128)
