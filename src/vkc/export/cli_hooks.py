"""CLI wiring for ``vkc export DIR --format jsonl|parquet|kernelbench|flashinfer-trace [--out PATH]``
(called from vkc.cli)."""
from __future__ import annotations

import argparse
import sys

FOLDER_FORMATS = ("kernelbench", "flashinfer-trace")


def add_export_args(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("export", help="one row per artifact (+ provenance, verification) as JSONL or Parquet; "
                                      "KernelBench tasks or a FlashInfer-Trace dataset of the kernels with a reference")
    p.add_argument("dir", metavar="DIR", help="folder of artifacts")
    p.add_argument("--format", choices=("jsonl", "parquet", *FOLDER_FORMATS), default="jsonl")
    p.add_argument("--out", metavar="PATH", help="output file (default DIR/kernels.jsonl|parquet) or, for "
                                                 "kernelbench / flashinfer-trace, a folder (default DIR/<format>)")
    return p


def run_export(a: argparse.Namespace) -> int:
    if a.format in FOLDER_FORMATS:
        if a.format == "kernelbench":
            from vkc.export.kernelbench import export_kernelbench as export
        else:
            from vkc.export.flashinfer import export_flashinfer as export
        summary = export(a.dir, a.out)
        print(f"WROTE {summary.out} {a.format}: {summary.line()}")
        for s in summary.skipped:
            print(f"vkc: export: skipped {s['artifact']}: {s['reason']}", file=sys.stderr)
        return 0
    from vkc.export import export_dir

    print(f"WROTE {export_dir(a.dir, a.format, a.out)}")
    return 0
