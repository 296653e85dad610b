# Kernels launched from other modules.
from vllm.triton_utils import tl, triton


@triton.jit
def shared_helper(x):
    return x


@triton.jit
def cross_kernel(x_ptr):
    tl.store(x_ptr, shared_helper(tl.load(x_ptr)))


@triton.jit
def mod_attr_kernel(x_ptr):
    pass


@triton.jit
def reexported_kernel(x_ptr):
    pass


@triton.jit
def indirect_kernel(x_ptr):
    pass


@triton.jit
def relay_kernel(x_ptr):
    pass


@triton.jit
def ctx_kernel(x_ptr):
    pass


@triton.jit
def dup_kernel(x_ptr):
    pass


@triton.jit
def dup_helper(x):
    return x


@triton.jit
def uses_dup_helper(x_ptr):
    tl.store(x_ptr, dup_helper(tl.load(x_ptr)))


def launch_dup(x):
    dup_kernel[(1,)](x)
    uses_dup_helper[(1,)](x)
