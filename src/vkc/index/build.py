"""build_index: Triton + CUDA scans, qualified names, and the on-disk cache."""
from __future__ import annotations

import dataclasses
from collections import Counter

from vkc.index import cache
from vkc.index.cuda_scan import scan_cuda
from vkc.index.triton_scan import scan_triton
from vkc.records import KernelEntry, KernelIndex, SourceTree


def build_index(tree: SourceTree, *, use_cache: bool = True) -> KernelIndex:
    """Every Triton and CUDA kernel of ``tree``, statically (vLLM is not imported).

    With ``use_cache`` the index is read from / written to the per-tree cache
    (see :mod:`vkc.index.cache`); without it the tree is scanned and nothing is
    written.  Kernels are sorted by (lang, qualified).
    """
    key = None
    if use_cache:
        key = cache.cache_key(tree)
        hit = cache.load(tree, key)
        if hit is not None:
            return hit
    kernels = qualify([*scan_triton(tree), *scan_cuda(tree)])
    index = KernelIndex(tree=tree, kernels=tuple(sorted(kernels, key=lambda k: (k.lang, k.qualified))))
    if use_cache:
        cache.save(index, key)
    return index


_SCAN_CACHE: dict[str, list[KernelEntry]] = {}


def scan_cuda_cached(tree: SourceTree) -> list[KernelEntry]:
    """The CUDA kernels of ``tree`` (the extractor looks up sibling kernels): from the kernel
    index's on-disk cache (:func:`build_index`), memoised per tree root in the process."""
    key = str(tree.root)
    if key not in _SCAN_CACHE:
        _SCAN_CACHE[key] = [k for k in build_index(tree).kernels if k.lang == "cuda"]
    return _SCAN_CACHE[key]


def qualify(kernels: list[KernelEntry]) -> list[KernelEntry]:
    """Fill missing ``qualified`` names and make every one unique.

    Triton: ``module:qualname``.  CUDA: ``file:name``, or ``file:name@LINE`` when
    the file defines the name more than once.  A (never expected) remaining
    collision gets ``@LINE`` appended.
    """
    cuda_counts = Counter((k.file, k.name) for k in kernels if k.lang == "cuda")
    out = []
    for k in kernels:
        if not k.qualified:
            if k.lang == "triton":
                q = f"{k.module}:{k.qualname}"
            else:
                q = f"{k.file}:{k.name}"
                if cuda_counts[(k.file, k.name)] > 1:
                    q += f"@{k.line}"
            k = dataclasses.replace(k, qualified=q)
        out.append(k)
    seen = Counter(k.qualified for k in out)
    return [dataclasses.replace(k, qualified=f"{k.qualified}@{k.line}")
            if seen[k.qualified] > 1 and "@" not in k.qualified else k for k in out]
