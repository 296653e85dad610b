"""Stage 2: the kernel index.  Entry: :func:`build_index`.

* :func:`build_index` (tree) -> KernelIndex: every Triton jit function and CUDA
  ``__global__`` kernel of a vLLM tree, found statically, cached per tree;
* :func:`lookup` (index, name) -> KernelEntry: bare / qualified name resolution;
* :func:`format_list` (index) -> str: ``vkc list`` text or JSON.
"""
from vkc.index.build import build_index
from vkc.index.listing import format_list
from vkc.index.lookup import lookup

__all__ = ["build_index", "format_list", "lookup"]
