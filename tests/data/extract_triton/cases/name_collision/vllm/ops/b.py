from vllm.triton_utils import tl, triton


@triton.jit
def helper(x):
    return x * 2  # B_HELPER


@triton.jit
def only_b(x):
    return helper(x)
