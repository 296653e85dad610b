# vkc 0.1.0 | vLLM 0.33.0 | kernel: rms_norm_kernel
# MODEL_NAME: Qwen/Qwen3-8B
# WORKLOAD: decode
# dims: hidden_size=4096 rms_norm_eps=1e-06 dtype=bfloat16
# sources: https://huggingface.co/Qwen/Qwen3-8B/blob/main/config.json
# grid=(num_tokens,) BLOCK_SIZE=next_power_of_2(hidden_size) num_warps=8
import os

import torch

SMALL_SANITY = not torch.cuda.is_available()
if SMALL_SANITY:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import triton  # noqa: E402

from rms_norm_kernel import rms_norm_kernel  # noqa: E402

device = "cpu" if SMALL_SANITY else "cuda"
num_tokens = 4 if SMALL_SANITY else 256
hidden_size = 4096
eps = 1e-06
x = torch.randn(num_tokens, hidden_size, dtype=torch.bfloat16, device=device)
weight = torch.randn(hidden_size, dtype=torch.bfloat16, device=device)
out = torch.empty_like(x)
BLOCK_SIZE = triton.next_power_of_2(hidden_size)
grid = (num_tokens,)
rms_norm_kernel[grid](
    x, weight, out, x.stride(0), out.stride(0), hidden_size, eps,
    BLOCK_SIZE=BLOCK_SIZE, num_warps=8,
)
if not SMALL_SANITY:
    torch.cuda.synchronize()
