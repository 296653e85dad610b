from vllm.op import exp, log
from vllm.triton_utils import tl, tldevice, triton


@triton.jit
def entry(x_ptr, N: tl.constexpr):
    offs = tl.arange(0, N)
    x = tl.load(x_ptr + offs)
    # a comment that must survive
    tl.store(x_ptr + offs, log(exp(x)) + tldevice.fast_expf(x))
