"""Wire the stages: source -> index -> extract -> modelcfg -> invoke -> write.

Each stage is a package with one entry function; this module only calls them in
order (the spec's Orchestrator runbook) and holds no logic of its own.
"""
from __future__ import annotations

import os

from vkc.errors import InvocationError
from vkc.records import KernelIndex, ModelConfig, SourceTree, WriteResult


def load_index(vllm_path: str | None = None, vllm_version: str | None = None,
               *, use_cache: bool = True) -> KernelIndex:
    from vkc.index import build_index
    from vkc.source import resolve_source
    tree: SourceTree = resolve_source(vllm_path, vllm_version)
    return build_index(tree, use_cache=use_cache)


def collect(name: str, *, model: str | None = None, workload: str | None = None,
            out_dir: str | os.PathLike = "kernels_out", vllm_path: str | None = None,
            vllm_version: str | None = None, command: str = "", index: KernelIndex | None = None,
            model_cfg: ModelConfig | None = None) -> WriteResult:
    """Collect one kernel into ``<out_dir>/<stem>.json`` and return what was written.

    ``index`` and ``model_cfg`` let a batch runner pass what it already loaded (they must be
    the index of the chosen tree and the config of ``model``, or of the default model)."""
    from vkc.write.names import check_kernel_name

    check_kernel_name(name)  # reject path-like names before touching anything
    from vkc.extract import extract
    from vkc.index import lookup
    from vkc.invoke import invoke
    from vkc.modelcfg import DEFAULT_MODEL, load_model
    from vkc.write import prepare_out_dir, write_artifact

    prepare_out_dir(out_dir)
    if workload not in (None, "prefill", "decode"):
        raise InvocationError(f"unknown workload {workload!r}", hint="use prefill or decode")
    index = index or load_index(vllm_path, vllm_version)
    kernel = lookup(index, name)
    extraction = extract(index.tree, kernel, name=name)
    cfg = model_cfg or load_model(model or DEFAULT_MODEL)
    invocation = invoke(index.tree, extraction, cfg, workload, command=command, name=name,
                        model_given=model is not None)
    return write_artifact(name, extraction.kernel_type, extraction.source_code,
                          invocation.code, out_dir)
