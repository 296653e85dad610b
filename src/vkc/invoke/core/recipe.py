"""One recipe protocol for both languages.

A recipe module (``vkc/invoke/<lang>/recipes/<family>.py``) defines ``RECIPES``: a tuple of
:class:`Recipe` records.  A record says which kernels it serves (qualified names:
``module:qualname`` for Triton, ``csrc/file.cu:name`` for CUDA), its family, the workloads its
wrapper runs and the default one, what it needs of the model (checked before any trace starts),
and its ``plan``: the language's way of making the launch plan (CUDA: ``build(ctx) -> Plan``;
Triton: an object with ``shapes``/``call``/... run by the trace worker).  See docs/recipes.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vkc.errors import NotApplicableError
from vkc.invoke.core.dims import ModelDims, Need
from vkc.invoke.core.family import Family

__all__ = ["Lang", "Recipe"]

Lang = Literal["triton", "cuda"]
_WORKLOADS = ("prefill", "decode")


@dataclass(frozen=True)
class Recipe:
    """How one wrapper family is driven at a model's shapes."""

    lang: Lang
    kernels: tuple[str, ...]
    family: Family
    plan: Any
    workloads: tuple[str, ...] = _WORKLOADS
    default_workload: str = "decode"
    needs: tuple[Need, ...] = ()
    template: str | None = None
    helpers: tuple[str, ...] = ()
    module: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.kernels:
            raise ValueError("a recipe serves at least one kernel")
        bad = [w for w in self.workloads if w not in _WORKLOADS]
        if bad or not self.workloads:
            raise ValueError(f"recipe workloads must be among {_WORKLOADS}, got {self.workloads}")
        if self.default_workload not in self.workloads:
            raise ValueError(f"default workload {self.default_workload!r} is not in {self.workloads}")
        if not isinstance(self.family, Family):
            object.__setattr__(self, "family", Family.parse(str(self.family)))
        object.__setattr__(self, "needs", tuple(Need(n) for n in self.needs))

    def check_workload(self, kernel: str, workload: str) -> None:
        """A workload the wrapper does not run: exit 12, naming the ones that apply."""
        if workload not in self.workloads:
            raise NotApplicableError(
                f"{kernel} is not used for {workload} in vLLM (its wrapper runs {', '.join(self.workloads)})",
                hint=f"use --workload {' or '.join(self.workloads)}")

    def check_needs(self, dims: ModelDims, kernel: str) -> None:
        """What the family needs of the model; raises NotApplicableError (exit 12)."""
        for need in self.needs:
            dims.require(need, kernel)
