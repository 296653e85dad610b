# Batch fixture: the second ``dup_kernel`` (the bare name is ambiguous).
import torch
import triton
import triton.language as tl


@triton.jit
def dup_kernel(x_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    tl.store(x_ptr + offs, tl.full([BLOCK], 2.0, tl.float32), mask=offs < n)


def twos(x: torch.Tensor) -> None:
    n = x.numel()
    dup_kernel[(triton.cdiv(n, 256),)](x, n, BLOCK=256)
