"""Test helpers: ModelConfig and Extraction objects without running the whole pipeline.

``model(id)`` loads the config offline (HF cache, else the snapshot bundled with vkc; the
tests never reach the hub).  ``extraction(tree, qualified)`` uses the CUDA extractor when it
is importable, else a hand-built Extraction whose source_code is a stand-in unit including
the original vLLM TU (compile-only).
"""
from __future__ import annotations

from pathlib import Path

from vkc.modelcfg import load_model
from vkc.records import Extraction, Handoff, KernelEntry, ModelConfig, SourceTree


def model(model_id: str) -> ModelConfig:
    return load_model(model_id, offline=True)


def have_extractor() -> bool:
    try:
        from vkc.extract.cuda import extract_cuda  # noqa: F401
        from vkc.index.cuda_scan import scan_cuda  # noqa: F401
        return True
    except ImportError:
        return False


def _entry(tree: SourceTree, qualified: str) -> KernelEntry | None:
    from vkc.index.cuda_scan import scan_cuda
    for e in scan_cuda(tree):
        if e.qualified == qualified or e.qualified.split("@")[0] == qualified:
            return e
    return None


def extraction(tree: SourceTree, qualified: str, qualname: str) -> tuple[Extraction, bool]:
    """(Extraction, real) -- real is True when the extractor produced it."""
    if have_extractor():
        from vkc.extract.cuda import extract_cuda
        entry = _entry(tree, qualified)
        if entry is not None:
            return extract_cuda(tree, entry), True
    file, name = qualified.split("@")[0].split(":")
    entry = KernelEntry(lang="cuda", name=name, qualname=qualname, file=file, line=1, end_line=1,
                        qualified=qualified)
    src = f'// stand-in unit: the original TU (compile-only)\n#include "{Path(tree.root) / file}"\n'
    handoff = Handoff(leaf_symbols=(qualname,), arg_order=(), grid_expr="", meta_params={}, guards={},
                      smem_formula=None, stride_semantics="elements")
    return Extraction(kernel=entry, kernel_type="cuda", source_code=src, handoff=handoff, facts={}), False
