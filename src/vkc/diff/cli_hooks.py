"""CLI wiring for ``vkc diff --from A --to B [--model M [--workload W]] [--out DIR] [--json]`` (called from vkc.cli)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from vkc.errors import UsageError

WORKLOADS = ("decode", "prefill")


def add_diff_args(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser("diff", help="what changed in the kernels between two vLLM releases")
    for side, what in (("from", "old"), ("to", "new")):
        g = p.add_mutually_exclusive_group()
        g.add_argument(f"--{side}", dest=f"{side}_version", metavar="X", help=f"the {what} vLLM release")
        g.add_argument(f"--{side}-path", dest=f"{side}_path", metavar="PATH", help=f"a local {what} vLLM tree")
    p.add_argument("--out", metavar="DIR", help="also write DIR/diff.md, DIR/diff.json and DIR/diff.html")
    p.add_argument("--json", action="store_true", help="print the JSON instead of the summary")
    from vkc.batch.cli_hooks import positive_int
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="extraction workers (default: the CPU count)")
    p.add_argument("--no-cache", action="store_true", help="extract every kernel again")
    p.add_argument("--model", metavar="M",
                   help="also what this model's step runs in each release (its model traces) and how the "
                        "launches changed at its shapes (Hugging Face id or a config.json)")
    p.add_argument("--workload", metavar="W", help="with --model: decode or prefill (default: both)")
    p.add_argument("--offline", action="store_true", help="with --model: do not contact the hub for the config")
    return p


def check_diff_args(a: argparse.Namespace) -> None:
    if a.workload is not None and a.model is None:
        raise UsageError("vkc diff --workload needs --model", hint="e.g. --model openai/gpt-oss-120b --workload decode")
    if a.workload is not None and a.workload not in WORKLOADS:
        raise UsageError(f"unknown workload {a.workload!r}", hint=f"one of {', '.join(WORKLOADS)}")
    if a.model is not None and not str(a.model).strip():
        raise UsageError("--model is empty", hint="give a Hugging Face model id or a path to a config.json")
    for side in ("from", "to"):
        if getattr(a, f"{side}_version") is None and getattr(a, f"{side}_path") is None:
            raise UsageError(f"vkc diff needs --{side} X (a vLLM release) or --{side}-path PATH",
                             hint="e.g. vkc diff --from 0.32.0 --to 0.33.0")
    if a.out is not None and not str(a.out).strip():
        raise UsageError("--out is empty", hint="give a folder")


def run_diff(a: argparse.Namespace) -> int:
    check_diff_args(a)
    from vkc.diff import diff_trees, render, write_diff
    from vkc.source import resolve_source

    trees = [resolve_source(getattr(a, f"{s}_path"), getattr(a, f"{s}_version")) for s in ("from", "to")]
    jobs = a.jobs or max(1, os.cpu_count() or 1)
    log = lambda s: print(s, file=sys.stderr, flush=True)
    d = diff_trees(trees[0], trees[1], jobs=jobs, use_cache=not a.no_cache, log=log)
    if a.model is not None:
        from vkc.diff.model import model_diff
        d = model_diff(d, trees[0], trees[1], a.model, a.workload, offline=a.offline, log=log)
    texts = render(d)
    if a.out is not None:
        for p in write_diff(d, a.out, texts):
            print(f"WROTE {p}", file=sys.stderr)
    sys.stdout.write(texts["json"] if a.json else texts["txt"])
    return 0


__all__ = ["add_diff_args", "check_diff_args", "run_diff"]
