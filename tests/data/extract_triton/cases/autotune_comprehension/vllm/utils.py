import functools

from vllm.platforms import current_platform

is_hopper = current_platform.has_device_capability(90)
NUM_WARPS = [2, 4, 8] if current_platform.is_cuda() else [4]


@functools.cache
def check_shared_mem(arch: str = "none") -> bool:
    return True
