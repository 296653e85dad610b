"""Fixture: added in tree b."""
import torch
import triton
import triton.language as tl


@triton.jit
def negate_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(x_ptr + offs, -tl.load(x_ptr + offs, mask=mask), mask=mask)


def negate_(x: torch.Tensor) -> None:
    negate_kernel[(triton.cdiv(x.numel(), 64),)](x, x.numel(), BLOCK=64)
