"""One workload policy for both languages.

Without ``--workload`` one rule picks it: the recipe's default, else the wrapper's evident phase
(its launch site sits on a prefill-only or decode-only path), else ``decode``; the header says
which.  A workload the recipe does not support is exit 12 with a hint naming what applies; a
workload that is no workload at all is a usage error (exit 2).
"""
from __future__ import annotations

from vkc.errors import UsageError
from vkc.invoke.core.recipe import Recipe

__all__ = ["DEFAULT_WORKLOAD", "WORKLOADS", "choose_workload"]

WORKLOADS = ("prefill", "decode")
DEFAULT_WORKLOAD = "decode"


def choose_workload(requested: str | None, recipe: Recipe | None, kernel: str,
                    wrapper_phase: str | None = None) -> tuple[str, str]:
    """``(workload, why)`` where ``why`` is the header's wording."""
    if requested is not None:
        if requested not in WORKLOADS:
            raise UsageError(f"unknown workload {requested!r}", hint="use prefill or decode")
        if recipe is not None:
            recipe.check_workload(kernel, requested)
        return requested, "given"
    if recipe is not None:
        return recipe.default_workload, (f"inferred: {kernel}'s wrapper runs {' and '.join(recipe.workloads)}; "
                                         f"{recipe.default_workload} is its recipe's default")
    if wrapper_phase in WORKLOADS:
        return wrapper_phase, f"inferred: the wrapper's launch site is on the {wrapper_phase} path"
    return DEFAULT_WORKLOAD, f"inferred: no recipe and no evident phase; {DEFAULT_WORKLOAD} is vkc's default"
