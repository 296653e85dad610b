"""``vkc diff ... --model M [--workload W]``: trace the model on both trees and add the step diff.

The traces are ``vkc model kernels``'s (same options, same cache: decode 64 x 4096 and prefill
4 x 2048 in one worker per tree, TRITON_ATTN / TRITON_MLA attention, tp 1).  A tree whose start-up
checklist fingerprints vkc does not know is traced anyway, with the trace's ``UNVERIFIED`` warning
on stderr and in every output; a trace that fails stops the diff with exit 9, naming the release and
the reason (a source diff without the model is still ``vkc diff`` without ``--model``).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable
from typing import Any

from vkc.diff.launches import diff_model_traces
from vkc.diff.records import TreeDiff
from vkc.errors import InvocationError
from vkc.records import SourceTree

__all__ = ["model_diff", "trace_options"]

_MISSING_VLLM_MODULE = re.compile(r"No module named '(vllm\.[\w.]+)'")


def trace_options(workload: str | None, *, mla: bool) -> tuple[Any, list[Any]]:
    """The trace options ``vkc model kernels`` uses by default, and the steps to compare."""
    from vkc.modeltrace.cli_hooks import options_from_args

    ns = argparse.Namespace(workload=workload or "decode", batch=None, ctx=None, prompt_len=None, tp=1,
                            attention_backend=None, kv_cache_dtype="auto")
    opts, spec = options_from_args(ns, mla=mla)
    return opts, [spec] if workload else list(opts.steps)


def _trace(tree: SourceTree, cfg: Any, raw: Any, opts: Any, log: Callable[[str], None]) -> Any:
    from vkc.modeltrace import trace_model

    label = f"local tree {tree.origin}" if tree.version == "local" else tree.label   # as the diff's sides
    log(f"vkc: tracing {cfg.model_id}'s step on {label} (cached for the next run)")
    try:
        trace = trace_model(tree, cfg, opts, raw_config=raw.config)
    except InvocationError as exc:
        hint = (f"the source diff alone runs without --model; 'vkc model kernels {cfg.model_id} "
                f"--vllm-version {tree.version} --debug' shows the worker's log")
        if _MISSING_VLLM_MODULE.search(exc.message) and "modeltrace/" in exc.message:
            hint = (f"vkc's model-trace start-up (vkc/modeltrace/) mirrors the worker of the vLLM releases its "
                    f"checklist knows and imports a module {label} does not have; {hint}")
        raise InvocationError(f"vkc diff --model: the model trace of {cfg.model_id} on {label} failed: "
                              f"{exc.message}", hint=hint) from None
    for w in trace.warnings:
        log(f"vkc: warning: {label}: {w}")
    return trace


def model_diff(d: TreeDiff, tree_a: SourceTree, tree_b: SourceTree, model: str, workload: str | None, *,
               offline: bool = False, log: Callable[[str], None] = lambda s: None) -> TreeDiff:
    """``d`` with its :class:`~vkc.diff.records.ModelDiff` for ``model``."""
    from vkc.modelcfg.fetch import fetch_config
    from vkc.modelcfg.normalise import normalise

    raw = fetch_config(model, offline=True if offline else None)
    cfg = normalise(raw.config, model_id=raw.model_id, origin=raw.origin, sources=raw.sources,
                    warnings=raw.warnings)
    opts, specs = trace_options(workload, mla=cfg.is_mla)
    ta, tb = (_trace(t, cfg, raw, opts, log) for t in (tree_a, tree_b))
    return dataclasses.replace(d, model=diff_model_traces(ta, tb, specs, d.changes, cfg.model_id))
