# Platform-conditional definitions: the CUDA branch must win.
from vllm.platforms import current_platform
from vllm.triton_utils import HAS_TRITON, tl, triton

TRITON3 = HAS_TRITON

if current_platform.is_rocm():

    @triton.jit
    def round_it(x):
        return x  # rocm

elif current_platform.is_xpu():

    @triton.jit
    def round_it(x):
        return x  # xpu

else:

    @triton.jit
    def round_it(x):
        return x  # cuda


if TRITON3:

    @triton.jit
    def softplus(x):
        return x  # triton3

else:

    @triton.jit
    def softplus(x):
        return x  # old triton


if not current_platform.is_rocm():

    @triton.jit
    def negated(x):
        return x  # cuda

else:

    @triton.jit
    def negated(x):
        return x  # rocm


if current_platform.is_rocm():

    @triton.jit
    def rocm_kernel(x_ptr):
        pass


@triton.jit
def user_kernel(x_ptr):
    tl.store(x_ptr, softplus(round_it(negated(tl.load(x_ptr)))))


def run(x):
    user_kernel[(1,)](x)
    if current_platform.is_rocm():
        rocm_kernel[(1,)](x)
