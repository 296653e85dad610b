"""Whole-tree coverage with ``--all`` and no model (issue 5): how many entry kernels get a
full artifact that compiles.

    python bench/tree_coverage.py collect [--dir bench_out/tree] [--jobs 2]
        ``vkc collect --all --out DIR`` (every Triton entry kernel and CUDA kernel, no model)
    python bench/tree_coverage.py verify [--dir bench_out/tree] [--jobs N]
        ``vkc verify --compile DIR`` (Triton: triton.compile for sm_90 on CPU; CUDA: nvcc of the
        unit with the chosen instantiation and of the host program); runs anywhere vkc, Triton
        and nvcc are (a many-core machine makes it minutes)
    python bench/tree_coverage.py summary [--dir bench_out/tree] [--json FILE]
        the numbers: per language, kernels / not applicable (ROCm-only) / artifacts written /
        artifacts whose every compile check passed, as counts and percentages; failures by reason

Denominators: Triton = every entry kernel of the index (ROCm-only ones count as failures, and
are also shown excluded); CUDA = kernels that are not ROCm-only.  A kernel counts as
compiling only when all its compile checks pass (CUDA: compile-unit and compile-invocation;
the unit-only number is shown too).
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

COMPILE_CHECKS = ("compile", "compile-unit", "compile-invocation")


def _vkc(*args: str) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "vkc", *args], check=False)
    dt = time.perf_counter() - t0
    print(f"vkc {' '.join(args)}: exit {p.returncode} in {dt:.1f} s", file=sys.stderr)
    return dt


def cmd_collect(a) -> None:
    _vkc("collect", "--all", "--out", a.dir, "--jobs", str(a.jobs))


def cmd_verify(a) -> None:
    _vkc("verify", "--compile", "--jobs", str(a.jobs), a.dir)


def _reason(text: str) -> str:
    text = re.sub(r"^.*?error:\s*", "", text)
    text = re.sub(r"\bat \d+:\d+: ", "", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "'…'", text)
    text = re.sub(r"\d+", "N", text)
    return text[:110]


def summarise(directory: str) -> dict:
    d = Path(directory)
    coll = json.loads((d / "collect_results.json").read_text())["kernels"]
    ver = json.loads((d / "verify_results.json").read_text())["artifacts"]
    checks = {}
    for e in ver:  # paths are relative to the results file's folder, or to where verify ran
        for cand in (os.path.join(directory, e["artifact"]), e["artifact"]):
            if os.path.exists(cand):
                checks[os.path.realpath(cand)] = e["checks"]
                break
    out: dict = {}
    for lang in ("triton", "cuda"):
        rows = [k for k in coll if k["lang"] == lang]
        rocm = [k for k in rows if k["status"] == "not applicable" and k["error_class"] == "RocmOnly"]
        na = [k for k in rows if k["status"] == "not applicable" and k["error_class"] != "RocmOnly"]
        written = [k for k in rows if k["status"] == "written"]
        ok = unit_ok = 0
        reasons: collections.Counter = collections.Counter()
        for k in written:
            cs = checks.get(os.path.realpath(k["path"]), [])
            comp = [c for c in cs if c["check"] in COMPILE_CHECKS]
            if comp and all(c["ok"] for c in comp):
                ok += 1
            elif not comp:
                reasons["not verified / static check failed"] += 1
            else:
                bad = next(c for c in comp if not c["ok"])
                reasons[f"{bad['check']}: {_reason(bad['reason'])}"] += 1
            if any(c["check"] in ("compile", "compile-unit") and c["ok"] for c in comp):
                unit_ok += 1
        for k in rows:
            if k["status"] == "failed":
                reasons[f"collect: {k['error_class']}"] += 1
        for k in na:
            reasons["collect: not applicable to any default model"] += 1
        total = len(rows)
        base = total - len(rocm) if lang == "cuda" else total
        out[lang] = {"kernels": total, "rocm_only": len(rocm), "denominator": base, "written": len(written),
                     "compile_ok": ok, "unit_compile_ok": unit_ok,
                     "compile_ok_pct": round(100 * ok / base, 1) if base else None,
                     "compile_ok_pct_excl_rocm": round(100 * ok / (total - len(rocm)), 1) if total - len(rocm) else None,
                     "failures": dict(reasons.most_common())}
    return out


def cmd_summary(a) -> None:
    s = summarise(a.dir)
    for lang, r in s.items():
        if not r["kernels"]:
            continue
        print(f"{lang}: {r['kernels']} kernels ({r['rocm_only']} ROCm-only), {r['written']} artifacts written, "
              f"{r['compile_ok']} compile ok = {r['compile_ok_pct']}% of {r['denominator']}"
              + (f" ({r['compile_ok_pct_excl_rocm']}% excluding ROCm-only)" if lang == "triton" else "")
              + (f"; unit only: {r['unit_compile_ok']}" if lang == "cuda" else ""))
        for why, n in list(r["failures"].items())[:a.show]:
            print(f"    {n:4d}  {why}")
    if a.json:
        Path(a.json).write_text(json.dumps(s, indent=1) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("collect", "verify", "summary"):
        c = sub.add_parser(name)
        c.add_argument("--dir", default="bench_out/tree")
        if name != "summary":
            c.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
        else:
            c.add_argument("--json", help="also write the numbers here")
            c.add_argument("--show", type=int, default=12, help="failure reasons shown per language")
    a = p.parse_args()
    {"collect": cmd_collect, "verify": cmd_verify, "summary": cmd_summary}[a.cmd](a)


if __name__ == "__main__":
    main()
