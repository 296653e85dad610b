"""Stage 3: make one kernel self-contained (the spec's Agent A).  Entry: :func:`extract`."""
from __future__ import annotations

from dataclasses import replace

from vkc.records import Extraction, KernelEntry, SourceTree


def extract(tree: SourceTree, kernel: KernelEntry, *, name: str | None = None) -> Extraction:
    """Dispatch on the kernel's language; ``name`` is the kernel name as the user gave it."""
    if kernel.lang == "triton":
        from vkc.extract.triton import extract_triton as run
    else:
        from vkc.extract.cuda import extract_cuda as run
    result = run(tree, kernel)
    facts = dict(result.facts)
    facts.setdefault("name", name or kernel.name)
    return replace(result, facts=facts)
