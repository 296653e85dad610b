"""The traced path: vLLM's own wrapper, driven by a workload recipe, run on meta tensors.

Entry: :func:`traced_plan` (:mod:`.planner`).  :mod:`.tracer` runs and caches the trace
worker (``python -m vkc.invoke.triton.traced.worker``: :mod:`.worker`, with :mod:`.platform`
(the fake H100), :mod:`.capture` (launch recorders) and :mod:`.tensors` (the recipes' ``T``)).
"""
from vkc.invoke.triton.traced.planner import traced_plan

__all__ = ["traced_plan"]
