"""Fixture: removed in tree b."""
import torch
import triton
import triton.language as tl


@triton.jit
def relu_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    tl.store(x_ptr + offs, tl.maximum(x, 0.0), mask=mask)


def relu_(x: torch.Tensor) -> None:
    relu_kernel[(triton.cdiv(x.numel(), 64),)](x, x.numel(), BLOCK=64)
