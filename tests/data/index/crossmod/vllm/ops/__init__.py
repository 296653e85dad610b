from vllm.ops.defs import reexported_kernel

__all__ = ["reexported_kernel"]
