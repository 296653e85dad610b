# Same names as in defs.py: ambiguous bare names.
from vllm.triton_utils import tl, triton


@triton.jit
def dup_kernel(x_ptr):
    pass


@triton.jit
def dup_helper(x):
    return x


@triton.jit
def only_helper(x):
    return x


@triton.jit
def other_kernel(x_ptr):
    tl.store(x_ptr, only_helper(dup_helper(tl.load(x_ptr))))


def launch_other(x):
    dup_kernel[(1,)](x)
    other_kernel[(1,)](x)
