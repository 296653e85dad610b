"""Triton invoker (spec 3.2, Agent B for Triton).  Entry: :func:`invoke_triton`.

Two paths make the launch plan (:class:`~vkc.invoke.triton.plan.TritonPlan`), and the header of
every artifact says which: :mod:`.traced` runs vLLM's own wrapper on meta tensors in a subprocess
under a fake H100 profile, driven by a workload recipe (:mod:`.recipes`) that sizes the problem
from the model's dims; :mod:`.untraced` synthesises the launch of a kernel without a recipe from
its signature and launch site.  :mod:`.render` renders ``templates/invoke.py.j2``.
"""
from vkc.invoke.triton.invoker import invoke_triton

__all__ = ["invoke_triton"]
