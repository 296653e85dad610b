"""``vkc list``: the index as text lines or as stable JSON."""
from __future__ import annotations

import json
from collections.abc import Sequence

from vkc.errors import UsageError
from vkc.index.serial import entry_to_dict
from vkc.records import KernelEntry, KernelIndex

ROLES = ("entry", "helper", "orphan")
LANGS = ("triton", "cuda")


def select(index: KernelIndex, *, lang: str | None = None, role: str | None = None) -> list[KernelEntry]:
    """Kernels filtered by lang/role, sorted by (lang, qualified)."""
    if lang is not None and lang not in LANGS:
        raise UsageError(f"unknown kernel language {lang!r}", hint="use triton or cuda")
    if role is not None and role not in ROLES:
        raise UsageError(f"unknown kernel role {role!r}", hint="use entry, helper or orphan")
    ks = [k for k in index.kernels
          if (lang is None or k.lang == lang) and (role is None or k.role == role)]
    return sorted(ks, key=lambda k: (k.lang, k.qualified))


def format_list(index: KernelIndex, *, lang: str | None = None, role: str | None = None,
                as_json: bool = False) -> str:
    """One line per kernel (``triton entry vllm.x.y:kernel  vllm/x/y.py:123``), or JSON.

    The JSON is a list of objects with every KernelEntry field (launch sites as
    objects), in a fixed key order, indented by 2; it is ``vkc list --json``.
    """
    return format_kernels(select(index, lang=lang, role=role), as_json=as_json)


def format_kernels(kernels: Sequence[KernelEntry], *, as_json: bool = False) -> str:
    """:func:`format_list` of kernels already selected (e.g. by :func:`vkc.list_kernels`)."""
    if as_json:
        return json.dumps([entry_to_dict(k) for k in kernels], indent=2, ensure_ascii=False)
    return "\n".join(f"{k.lang} {k.role} {k.qualified}  {k.file}:{k.line}" for k in kernels)
