"""Triton invoker (spec 3.2, Agent B for Triton).  Entry: :func:`invoke_triton`.

The launch is traced by running vLLM's own wrapper on meta tensors in a subprocess
(:mod:`.trace_worker`) under a fake H100 profile; workload recipes (:mod:`.recipes`)
size the problem from the model's dims.  The invocation example is rendered from
``templates/invoke.py.j2``.
"""
from vkc.invoke.triton.invoker import invoke_triton

__all__ = ["invoke_triton"]
