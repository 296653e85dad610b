"""Kernel family from its file path and name: the one vocabulary, :class:`vkc.invoke.core.family.Family`.

The text matched is ``"<file path> <kernel name>"`` lower-cased (for CUDA the qualified
``csrc/...`` form, for Triton the ``vllm/...py`` path or the dotted module); the rules and their
order are :data:`vkc.invoke.core.family.RULES`.
"""
from __future__ import annotations

from vkc.invoke.core.family import RULES, Family

FAMILY_RULES: tuple[tuple[str, str], ...] = tuple((f.value, p) for f, p in RULES)
FAMILIES: tuple[str, ...] = tuple(f.value for f in Family)


def family_of(path: str | None, name: str | None) -> str:
    """The family of a kernel defined in ``path`` named ``name`` (``other`` when no rule matches)."""
    return Family.of(path, name).value


__all__ = ["FAMILIES", "FAMILY_RULES", "family_of"]
