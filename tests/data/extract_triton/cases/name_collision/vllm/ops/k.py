import vllm.ops.b as bm
from vllm.triton_utils import tl, triton

from .a import helper


@triton.jit
def entry(x_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    tl.store(x_ptr + offs, helper(x) + bm.helper(x) + bm.only_b(x))
