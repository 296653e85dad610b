from vllm.triton_utils import tl, triton


@triton.jit
def helper(x):
    return x + 1  # A_HELPER
