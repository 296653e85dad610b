"""CLI wiring for ``vkc export DIR --format jsonl|parquet [--out FILE]`` (called from vkc.cli)."""
from __future__ import annotations

import argparse


def add_export_args(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="one row per artifact (+ provenance, verification) as JSONL or Parquet")
    p.add_argument("dir", metavar="DIR", help="folder of artifacts")
    p.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    p.add_argument("--out", metavar="FILE", help="output file (default DIR/kernels.jsonl|parquet)")
    return p


def run_export(a: argparse.Namespace) -> int:
    from vkc.export import export_dir

    print(f"WROTE {export_dir(a.dir, a.format, a.out)}")
    return 0
