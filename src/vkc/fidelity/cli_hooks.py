"""CLI wiring for ``vkc fidelity DIR [--kernel NAME ...]`` (called from vkc.cli)."""
from __future__ import annotations

import argparse
import sys


def add_fidelity_args(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("fidelity", help="compare each artifact's compiled IR with the original vLLM kernel's")
    p.add_argument("dir", metavar="DIR", help="folder of artifacts; writes DIR/fidelity_results.json")
    p.add_argument("--kernel", action="append", metavar="NAME",
                   help="only this artifact (name, qualified name or file stem); repeatable")
    p.add_argument("--vllm", metavar="PATH", help="the vLLM tree the artifacts came from (default: the cached sdist)")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="artifacts checked at once (default 1)")
    p.add_argument("--every", type=int, default=1, metavar="K",
                   help="check only every K-th artifact (file order), to sample a large folder")
    return p


def run_fidelity_cmd(a: argparse.Namespace) -> int:
    from vkc.fidelity import format_fidelity, run_fidelity

    tree = None
    if a.vllm:
        from vkc.source import resolve_source
        tree = str(resolve_source(a.vllm).root)
    if a.jobs < 1 or a.every < 1:
        from vkc.errors import UsageError
        raise UsageError("--jobs and --every must be at least 1", hint="e.g. --jobs 2 --every 5")
    out = run_fidelity(a.dir, names=a.kernel, tree_root=tree, jobs=a.jobs, every=a.every,
                       progress=lambda s: print(s, file=sys.stderr, flush=True))
    sys.stdout.write(format_fidelity(out))
    from vkc.errors import VerifyError

    return 0 if out["summary"]["mismatch"] == 0 and out["summary"]["error"] == 0 else VerifyError.exit_code
