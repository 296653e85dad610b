"""The untraced path: a CUDA kernel without a recipe gets a compile-quality plan from its
signature and launch site (UNTRACED in the header).  Entry: :func:`build_untraced`.

* :mod:`.generic` -- the plan (placeholder buffers, scalars bound from the model by name, the
  launch site's grid/block when every name in them is bound);
* :mod:`.contents` -- ranged index buffers and pointer tables of real allocations (issue 12);
* :mod:`.names` -- which template instantiation, collision-free host identifiers, namespaces.
"""
from __future__ import annotations

import re

from vkc.invoke.cuda.context import Ctx
from vkc.invoke.cuda.plan import Plan
from vkc.invoke.cuda.untraced.generic import build
from vkc.records import Extraction

__all__ = ["build_untraced", "evident_phase"]

_PHASES = (("decode", re.compile(r"decode", re.IGNORECASE)), ("prefill", re.compile(r"prefill", re.IGNORECASE)))


def build_untraced(ctx: Ctx) -> Plan:
    """The generic plan for ``ctx.kernel`` (InvocationError when the facts cannot make one)."""
    return build(ctx)


def evident_phase(extraction: Extraction) -> str | None:
    """``decode`` / ``prefill`` when the launching wrapper (or the kernel) names exactly one phase."""
    launch = extraction.facts.get("launch") or {}
    text = f"{launch.get('wrapper') or ''} {extraction.kernel.name}"
    found = [phase for phase, pat in _PHASES if pat.search(text)]
    return found[0] if len(found) == 1 else None
