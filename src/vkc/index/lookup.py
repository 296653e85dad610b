"""Kernel name -> KernelEntry.

Accepted names (after :func:`vkc.naming.check_kernel_name`):

* qualified: ``vllm.x.y:qualname`` (Triton), ``vllm/x/y.py:qualname`` (same, by
  path), ``csrc/file.cu:name`` / ``csrc/file.cu:name@LINE`` (CUDA): always resolve;
* bare: ``name`` or a qualname such as ``Cls.kernel``.  It resolves if exactly
  one *entry* kernel (either language, or ``lang``) has that name/qualname; if
  none does, exactly one helper/orphan may match.  Several matches ->
  AmbiguousKernelError listing every candidate's qualified name (entries first,
  each group sorted).  No match -> KernelLookupError with the closest names.
"""
from __future__ import annotations

import difflib

from vkc.errors import AmbiguousKernelError, KernelLookupError, UsageError
from vkc.naming import check_kernel_name
from vkc.records import KernelEntry, KernelIndex

LANGS = ("triton", "cuda")


def lookup(index: KernelIndex, name: str, *, lang: str | None = None) -> KernelEntry:
    """The one kernel ``name`` designates in ``index``."""
    check_kernel_name(name)
    if lang is not None and lang not in LANGS:
        raise UsageError(f"unknown kernel language {lang!r}", hint="use triton or cuda")
    kernels = [k for k in index.kernels if lang is None or k.lang == lang]
    if ":" in name:
        matches = _qualified_matches(kernels, name)
    else:
        matches = [k for k in kernels if name in (k.name, k.qualname)]
    entries = [k for k in matches if k.role == "entry"]
    if len(entries) == 1:
        return entries[0]
    if len(matches) == 1:
        return matches[0]
    if matches:
        ordered = sorted(entries, key=lambda k: k.qualified) + \
            sorted((k for k in matches if k.role != "entry"), key=lambda k: k.qualified)
        raise AmbiguousKernelError(
            f"kernel name {name!r} is ambiguous ({len(ordered)} candidates): "
            + ", ".join(k.qualified for k in ordered),
            hint="pass one of the qualified names listed")
    raise KernelLookupError(
        f"no {lang + ' ' if lang else ''}kernel named {name!r} in {index.tree.label}",
        hint=_suggest(kernels, name))


def _qualified_matches(kernels: list[KernelEntry], name: str) -> list[KernelEntry]:
    exact = [k for k in kernels if k.qualified == name]
    if exact:
        return exact
    left, _, right = name.partition(":")
    if left.endswith(".py"):        # vllm/x/y.py:qualname
        return [k for k in kernels if k.lang == "triton" and k.file == left and k.qualname == right]
    # csrc/file.cu:name where the file defines name more than once (qualified has @LINE)
    return [k for k in kernels if k.lang == "cuda" and k.file == left and k.name == right]


def _suggest(kernels: list[KernelEntry], name: str) -> str:
    words = sorted({k.name for k in kernels} | {k.qualname for k in kernels}
                   | {k.qualified for k in kernels})
    close = difflib.get_close_matches(name, words, n=5, cutoff=0.6)
    if close:
        return "did you mean: " + ", ".join(close) + "? (`vkc list` shows every kernel)"
    return "run `vkc list` to see every kernel"
