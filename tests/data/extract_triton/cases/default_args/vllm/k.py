import torch

from vllm.platforms import current_platform
from vllm.triton_utils import tl, triton

float8_info = torch.finfo(current_platform.fp8_dtype())
DEFAULT_BLOCK = 128


@triton.jit(do_not_specialize=["n"])
def entry(
    out_ptr,
    n,
    FP8_MIN: tl.constexpr = float8_info.min,  # keep this comment
    FP8_MAX: tl.constexpr = float8_info.max,
    BLOCK: tl.constexpr = DEFAULT_BLOCK * 2,
    DTYPE: tl.constexpr = tl.float16,
):
    offs = tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.clamp(tl.zeros([BLOCK], DTYPE), FP8_MIN, FP8_MAX), mask=offs < n)
