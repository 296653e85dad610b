"""Stage 3: make one kernel self-contained (the spec's Agent A).  Entry: :func:`extract`."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from vkc.records import Extraction, KernelEntry, SourceTree

if TYPE_CHECKING:
    from vkc.extract.cache import ExtractionCache


def extract(tree: SourceTree, kernel: KernelEntry, *, name: str | None = None,
            cache: bool | ExtractionCache = False) -> Extraction:
    """Dispatch on the kernel's language; ``name`` is the kernel name as the user gave it.

    ``cache``: read and write the on-disk extraction cache (:mod:`vkc.extract.cache`; True for
    the tree's own, or an :class:`~vkc.extract.cache.ExtractionCache` of ``tree``)."""
    if cache is False:
        result = extract_uncached(tree, kernel)
    else:
        from vkc.extract.cache import ExtractionCache
        store = cache if isinstance(cache, ExtractionCache) else ExtractionCache(tree)
        result = store.extract(kernel, extract_uncached)
    facts = dict(result.facts)
    facts.setdefault("name", name or kernel.name)
    return replace(result, facts=facts)


def extract_uncached(tree: SourceTree, kernel: KernelEntry) -> Extraction:
    """The language extractor's own result (no cache, no ``name`` fact)."""
    if kernel.lang == "triton":
        from vkc.extract.triton import extract_triton as run
    else:
        from vkc.extract.cuda import extract_cuda as run
    return run(tree, kernel)
