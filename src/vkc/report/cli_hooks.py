"""CLI wiring for ``vkc report DIR [--out PREFIX]`` (called from vkc.cli)."""
from __future__ import annotations

import argparse


def add_report_args(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("report", help="summarise a batch folder as report.md/.json/.html")
    p.add_argument("dir", metavar="DIR", help="folder of artifacts (+ collect/verify/fidelity results)")
    p.add_argument("--out", metavar="PREFIX", help="write PREFIX.md, PREFIX.json, PREFIX.html (default DIR/report)")
    return p


def run_report(a: argparse.Namespace) -> int:
    from vkc.report import write_report

    for p in write_report(a.dir, a.out):
        print(f"WROTE {p}")
    return 0
