"""The compiler toolchain helpers that invoke, verify and fidelity share (a leaf: imports no stage).

* :mod:`vkc.toolchain.nvcc`: vLLM's nvcc flags, the torch include dir, the
  ``// VKC_INSTANTIATE:`` marker lines and the snippet that forces their instantiation,
  nvcc's first error line, the Blackwell-only ptxas pattern;
* :mod:`vkc.toolchain.triton`: loading a Triton entry from a source file and building the
  ``triton.compiler.ASTSource`` for it across Triton versions.

Nothing here imports torch or triton at module level.
"""
