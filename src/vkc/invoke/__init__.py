"""Stage 5: the model-aware invocation example (the spec's Agent B).  Entry: :func:`invoke`."""
from __future__ import annotations

from vkc.records import Extraction, Invocation, ModelConfig, SourceTree


def invoke(tree: SourceTree, extraction: Extraction, model: ModelConfig, workload: str | None,
           *, command: str, name: str) -> Invocation:
    """Dispatch on the kernel's language."""
    if extraction.kernel_type == "triton":
        from vkc.invoke.triton import invoke_triton
        return invoke_triton(tree, extraction, model, workload, command=command)
    from vkc.invoke.cuda import invoke_cuda
    return invoke_cuda(tree, extraction, model, workload, command=command, name=name)
