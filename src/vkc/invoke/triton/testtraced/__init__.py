"""The test-traced path of the Triton invoker: a vLLM test's own call of the kernel's wrapper.

Entry: :func:`attempt` (:mod:`.attempt`), which runs the ``vkc.testtrace`` stage and turns its
capture into a :class:`~vkc.invoke.triton.plan.TritonPlan` (:mod:`.build`).
"""
from vkc.invoke.triton.testtraced.attempt import Attempt
from vkc.invoke.triton.testtraced.build import Refused, capture_plan

__all__ = ["Attempt", "Refused", "capture_plan"]
