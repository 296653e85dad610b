"""Which source made an invocation example, in the words the header, results and report use.

=================  ============================================================  ===============
mode               the launch came from                                           model-accurate
=================  ============================================================  ===============
``model-traced``   vLLM's own model step at the model's config and batch          yes
``recipe``         vLLM's wrapper (Triton) or launch expressions (CUDA) driven    yes
                   by a vkc recipe at the model's dimensions
``test-traced``    a vLLM test's own call, its sizes mapped from the model        yes
``vllm-sized``     a real launch from vLLM's code at sizes vLLM hard-codes        no
``synthesized``    the kernel's signature (vkc's conventions for contents)        no
=================  ============================================================  ===============

Every artifact carries one :class:`Provenance`; a weaker source taking over from a stronger one
that failed is never silent: :attr:`Provenance.fallback_from` says which failed and why, and the
collector prints one warning line.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["InvocationMode", "Provenance"]


class InvocationMode(str, enum.Enum):
    MODEL_TRACED = "model-traced"
    RECIPE = "recipe"
    TEST_TRACED = "test-traced"
    VLLM_SIZED = "vllm-sized"
    SYNTHESIZED = "synthesized"

    @property
    def model_accurate(self) -> bool:
        return self in (InvocationMode.MODEL_TRACED, InvocationMode.RECIPE, InvocationMode.TEST_TRACED)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Provenance:
    """The source of one example's launch: ``mode`` and a human-readable ``source``."""

    mode: InvocationMode
    source: str
    fallback_from: str | None = None   # "<stronger mode>: <why it failed>" when a weaker source took over

    @property
    def model_accurate(self) -> bool:
        return self.mode.model_accurate

    def header_value(self) -> str:
        acc = "model-accurate" if self.model_accurate else "NOT model-accurate"
        text = f"{self.mode.value} ({acc}): {self.source}"
        if self.fallback_from:
            text += f"; fell back from {self.fallback_from}"
        return text

    def to_json(self) -> dict[str, str | bool | None]:
        return {"invocation_mode": self.mode.value, "invocation_source": self.source,
                "model_accurate": self.model_accurate, "invocation_fallback_from": self.fallback_from}
