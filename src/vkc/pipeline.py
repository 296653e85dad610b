"""Wire the stages: source -> index -> extract -> modelcfg -> invoke -> write.

Each stage is a package with one entry function; this module only calls them in
order (the spec's Orchestrator runbook) and holds no logic of its own.
"""
from __future__ import annotations

import dataclasses
import os

from vkc.errors import NotApplicableError, UsageError
from vkc.invoke.core.policy import WORKLOADS
from vkc.records import Extraction, Invocation, KernelIndex, ModelConfig, SourceTree, WriteResult


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
    from vkc.naming import check_kernel_name

    check_kernel_name(name)  # reject path-like names before touching anything
    from vkc.extract import extract
    from vkc.index import lookup
    from vkc.invoke import invoke
    from vkc.modelcfg import load_model
    from vkc.write import prepare_out_dir, write_artifact

    prepare_out_dir(out_dir)
    if workload not in (None, *WORKLOADS):
        raise UsageError(f"unknown workload {workload!r}", hint="use prefill or decode")
    index = index or load_index(vllm_path, vllm_version)
    kernel = lookup(index, name)
    extraction = extract(index.tree, kernel, name=name, cache=True)   # a retry after a failed invocation reads it
    if model is not None:
        cfg = model_cfg or load_model(model)
        invocation = invoke(index.tree, extraction, cfg, workload, command=command, name=name)
    else:
        invocation = _invoke_default_model(index.tree, extraction, workload, command, name, model_cfg)
    written = write_artifact(name, extraction.kernel_type, extraction.source_code, invocation.code, out_dir)
    prov = invocation.facts.get("provenance")
    ref = invocation.facts.get("reference")
    ref_source = f"{ref['reference_source']} {ref.get('reference_origin', '')}".strip() \
        if isinstance(ref, dict) and ref.get("reference_source") else ""
    if prov is None:
        return dataclasses.replace(written, model_id=invocation.model_id, reference_source=ref_source)
    return dataclasses.replace(written, model_id=invocation.model_id, invocation_mode=prov.mode.value,
                               invocation_source=prov.source, model_accurate=prov.model_accurate,
                               reference_source=ref_source)


def _invoke_default_model(tree: SourceTree, extraction: Extraction, workload: str | None, command: str,
                          name: str, default_cfg: ModelConfig | None) -> Invocation:
    """No --model: the first of ``DEFAULT_MODELS`` the kernel applies to (configs loaded once);
    when none applies, the error for DEFAULT_MODEL."""
    from vkc.invoke import invoke
    from vkc.modelcfg import DEFAULT_MODEL, DEFAULT_MODELS, load_model_cached

    first: NotApplicableError | None = None
    for m in DEFAULT_MODELS:
        if m == DEFAULT_MODEL and default_cfg is not None:
            cfg = default_cfg
        else:
            cfg = load_model_cached(m)
        try:
            return invoke(tree, extraction, cfg, workload, command=command, name=name)
        except NotApplicableError as exc:
            first = first or exc
    assert first is not None
    raise first

