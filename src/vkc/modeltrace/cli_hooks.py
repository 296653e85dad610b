"""CLI wiring for ``vkc model kernels MODEL ...`` (called from vkc.cli's ``model`` subcommands)."""
from __future__ import annotations

import argparse
import sys

from vkc.batch.cli_hooks import positive_int as _positive_int
from vkc.errors import UsageError

__all__ = ["add_model_kernels_args", "options_from_args", "run_model_kernels"]

DEFAULTS = {"decode": {"batch": 64, "ctx": 4096}, "prefill": {"batch": 4, "prompt_len": 2048}}


def add_model_kernels_args(msub) -> argparse.ArgumentParser:
    p = msub.add_parser("kernels", help="every kernel vLLM launches for one decode/prefill step of a model")
    p.add_argument("model", metavar="MODEL", help="Hugging Face model id or path to a config.json")
    p.add_argument("--workload", choices=("decode", "prefill"), default="decode")
    p.add_argument("--batch", type=_positive_int, help="sequences (default: decode 64, prefill 4)")
    p.add_argument("--ctx", type=_positive_int, help="decode context length (default 4096)")
    p.add_argument("--prompt-len", type=_positive_int, help="prefill prompt length (default 2048)")
    p.add_argument("--tp", type=_positive_int, default=1, help="tensor-parallel size; shapes are rank 0's")
    p.add_argument("--attention-backend", metavar="NAME",
                   help="vLLM attention backend (default TRITON_ATTN, TRITON_MLA for MLA models: their kernels are in the tree)")
    p.add_argument("--kv-cache-dtype", choices=("auto", "fp8"), default="auto")
    p.add_argument("--features", action="append", default=[], metavar="NAMES",
                   help="serving features traced after the forward, comma-separated: sampler, bitmask "
                        "(structured output), spec (n-gram speculative decoding, 3 drafts), lora (LoRA at "
                        "--max-lora-rank 16 under vLLM's dummy adapters; MODEL@lora=RANK for another rank)")
    p.add_argument("--sampler", action="store_true", help="same as --features sampler")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--offline", action="store_true", help="do not contact the hub for the config")
    p.add_argument("--vllm", metavar="PATH", help="use a local vLLM checkout or unpacked sdist")
    p.add_argument("--vllm-version", metavar="X", help="use another vLLM release from the package index")
    return p


def options_from_args(a: argparse.Namespace, *, mla: bool = False):
    from vkc.modeltrace.records import StepSpec, TraceOptions

    if a.workload == "decode" and a.prompt_len is not None:
        raise UsageError("--prompt-len is for --workload prefill", hint="use --ctx for decode")
    if a.workload == "prefill" and a.ctx is not None:
        raise UsageError("--ctx is for --workload decode", hint="use --prompt-len for prefill")
    d = DEFAULTS[a.workload]
    if a.workload == "decode":
        spec = StepSpec("decode", a.batch or d["batch"], ctx=a.ctx or d["ctx"])
    else:
        spec = StepSpec("prefill", a.batch or d["batch"], prompt_len=a.prompt_len or d["prompt_len"])
    # one trace process serves both workloads at their default shapes (and the requested one)
    steps = {spec, StepSpec("decode", DEFAULTS["decode"]["batch"], ctx=DEFAULTS["decode"]["ctx"]),
             StepSpec("prefill", DEFAULTS["prefill"]["batch"], prompt_len=DEFAULTS["prefill"]["prompt_len"])}
    ordered = tuple(sorted(steps, key=lambda s: (s.workload, s.batch, s.ctx, s.prompt_len)))
    backend = a.attention_backend or ("TRITON_MLA" if mla else "TRITON_ATTN")
    opts = TraceOptions(ordered, tp=a.tp, attention_backend=backend, kv_cache_dtype=a.kv_cache_dtype)
    features = list(getattr(a, "features", None) or []) + (["sampler"] if getattr(a, "sampler", False) else [])
    if features:
        from vkc.modeltrace.features import with_features

        opts = with_features(opts, features)
    return opts, spec


def run_model_kernels(a: argparse.Namespace) -> int:
    from vkc.modelcfg.fetch import fetch_config
    from vkc.modelcfg.normalise import normalise
    from vkc.modeltrace import trace_model
    from vkc.modeltrace.render import render_json, render_table
    from vkc.source import resolve_source

    if a.vllm and a.vllm_version:
        raise UsageError("--vllm and --vllm-version are exclusive")
    options_from_args(a)                       # usage errors before any network or disk
    offline = True if a.offline else None
    raw = fetch_config(a.model, offline=offline)
    cfg = normalise(raw.config, model_id=raw.model_id, origin=raw.origin, sources=raw.sources, warnings=raw.warnings)
    opts, spec = options_from_args(a, mla=cfg.is_mla)
    from vkc.modeltrace.variants import serving_variant

    opts = serving_variant(opts, cfg.model_id)         # MODEL@KEY=VALUE: the options the id names
    tree = resolve_source(a.vllm, a.vllm_version)
    trace = trace_model(tree, cfg, opts, raw_config=raw.config)
    if a.json:
        sys.stdout.write(render_json(trace, spec))
    else:
        sys.stdout.write(render_table(trace, spec))
    for w in trace.warnings:
        print(f"vkc: warning: {w}", file=sys.stderr)
    return 0
