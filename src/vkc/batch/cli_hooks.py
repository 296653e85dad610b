"""The CLI's side of the batch features: extra flags and the two entry points.

Wiring (in :mod:`vkc.cli`)::

    c.add_argument("kernel", metavar="KERNEL_NAME", nargs="?")
    c.add_argument("--model", action="append", ...)          # repeatable with --all
    c.add_argument("--workload", choices=..., action="append")
    add_batch_args(c, v)
    ...
    if a.cmd == "collect" and check_collect_args(a):  # True for --all
        return run_collect_all(a)
    if a.cmd == "verify":
        return run_verify_many(a)

``check_collect_args`` enforces "KERNEL_NAME or --all, not both" and, for a single
kernel, turns the ``--model``/``--workload`` lists back into one value (at most one each).
"""
from __future__ import annotations

import argparse
import sys

from vkc.errors import UsageError, VerifyError

EXIT_SOME_FAILED = 1   # --all: at least one kernel failed (not-applicable ones do not count)


def positive_int(s: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid positive integer: {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {s!r}")
    return v


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds: {s!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {s!r}")
    return v


def add_batch_args(collect_parser: argparse.ArgumentParser, verify_parser: argparse.ArgumentParser) -> None:
    """``collect --all/--type/--jobs`` and ``verify --jobs/--timeout/--results``."""
    c = collect_parser
    c.add_argument("--all", action="store_true",
                   help="collect every entry kernel (every --model x --workload given) in parallel; "
                        "with several models/workloads files go to DIR/<model-slug>/<workload>/; "
                        "summary on stderr, DIR/collect_results.json")
    c.add_argument("--type", dest="kernel_type", choices=("triton", "cuda"),
                   help="with --all: only kernels of this language")
    c.add_argument("--jobs", type=positive_int, metavar="N",
                   help="with --all: worker processes (default: the CPU count)")
    c.add_argument("--all-used", action="store_true",
                   help="with --model M: collect every tree kernel M's traced step launches (per --workload), "
                        "each at its traced launch; like --all otherwise")
    c.add_argument("--no-reach", action="store_true",
                   help="with --all and no --model: size every kernel at the default model, as before the reach "
                        "map (default: a kernel a bundled model's traced step launches is collected at the first "
                        "such model and workload)")
    c.add_argument("--resume", action="store_true",
                   help="with --all: skip the artifacts already in DIR for the same inputs (vkc, tree, "
                        "model config); collect only the missing ones")
    v = verify_parser
    v.add_argument("--jobs", type=positive_int, metavar="N",
                   help="parallel compile workers (default: the CPU count); runs are one at a time")
    v.add_argument("--run-jobs", type=positive_int, default=1, metavar="N",
                   help="with --run: run N examples at once on the one GPU (default 1); for correctness and "
                        "memcheck sweeps only: the times they print are taken under contention and are "
                        "marked so in the results")
    v.add_argument("--timeout", type=_positive_float, default=300.0, metavar="S",
                   help="with --run: seconds each program may run (default 300)")
    v.add_argument("--compile-timeout", type=_positive_float, default=1800.0, metavar="S",
                   help="with --compile: seconds one artifact's compile may take (default 1800)")
    v.add_argument("--no-sandbox", action="store_true",
                   help="with --run: run the examples' host code without bubblewrap (default: in bwrap when on PATH)")
    v.add_argument("--results", metavar="FILE",
                   help="write the JSON results here (default: FOLDER/verify_results.json per folder given)")


def check_collect_args(a: argparse.Namespace) -> bool:
    """Validate KERNEL_NAME vs --all; True when this is a ``--all`` run."""
    models = a.model if isinstance(a.model, list) else ([a.model] if a.model else [])
    workloads = a.workload if isinstance(a.workload, list) else ([a.workload] if a.workload else [])
    if getattr(a, "all_used", False):
        if a.kernel is not None or getattr(a, "all", False):
            raise UsageError("--all-used replaces KERNEL_NAME and --all",
                             hint="vkc collect --model M --all-used [--workload W]")
        if len(models) != 1:
            raise UsageError("--all-used needs exactly one --model", hint="vkc collect --model M --all-used")
        a.model, a.workload = models, workloads or None
        return True
    if getattr(a, "all", False):
        if a.kernel is not None:
            raise UsageError("give either KERNEL_NAME or --all, not both",
                             hint="vkc collect KERNEL_NAME, or vkc collect --all")
        a.model, a.workload = models or None, workloads or None
        return True
    if a.kernel is None:
        raise UsageError("missing KERNEL_NAME", hint="vkc collect KERNEL_NAME, or vkc collect --all")
    for flag, val in (("--type", getattr(a, "kernel_type", None)), ("--jobs", getattr(a, "jobs", None)),
                      ("--resume", getattr(a, "resume", None) or None),
                      ("--no-reach", getattr(a, "no_reach", None) or None)):
        if val is not None:
            raise UsageError(f"{flag} only applies with --all", hint="vkc collect --all " + flag + " ...")
    for flag, vals in (("--model", models), ("--workload", workloads)):
        if len(vals) > 1:
            raise UsageError(f"{flag} given {len(vals)} times for one kernel",
                             hint=f"give {flag} once, or use --all for several")
    a.model = models[0] if models else None
    a.workload = workloads[0] if workloads else None
    return False


def one_line(text: str) -> str:
    """``text`` safe to print as one terminal line: control characters (ESC, CR, newlines, ...)
    shown escaped, as ``repr`` would, so untrusted names cannot move the cursor or recolour."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


class Terminated(Exception):
    """SIGTERM arrived: unwind (workers are killed on the way out) and exit 143."""


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise Terminated()


def _terminable(fn):
    """Run a batch command so that SIGTERM, like Ctrl-C, stops it with one line on stderr
    (``vkc: terminated``) and exit status 143 (Ctrl-C: ``vkc: interrupted``, 130)."""
    import functools
    import signal

    @functools.wraps(fn)
    def wrapper(a: argparse.Namespace) -> int:
        old = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return fn(a)
        except Terminated:
            sys.stderr.write("vkc: terminated\n")
            return EXIT_TERMINATED
        finally:
            signal.signal(signal.SIGTERM, old)
    return wrapper


@_terminable
def run_collect_all(a: argparse.Namespace) -> int:
    """``vkc collect --all``: 0 when no kernel failed, else EXIT_SOME_FAILED."""
    from vkc.batch.collect_all import collect_all, format_summary
    from vkc.batch.progress import make_progress

    report = collect_all(lang=a.kernel_type, models=a.model, workloads=a.workload, jobs=a.jobs,
                         out_dir=a.out, vllm_path=a.vllm, vllm_version=a.vllm_version,
                         progress=make_progress(sys.stderr), resume=a.resume, all_used=a.all_used,
                         reach=not getattr(a, "no_reach", False))
    sys.stderr.write(format_summary(report))
    sys.stderr.flush()
    return EXIT_SOME_FAILED if report.failed else 0


@_terminable
def run_verify_many(a: argparse.Namespace) -> int:
    """``vkc verify``: results on stdout (as before), JSON beside the artifacts; 0 or 11."""
    from vkc.batch.progress import make_progress
    from vkc.batch.verify_many import verify_many
    from vkc.verify import all_ok, format_results

    progress = make_progress(sys.stderr) if (a.compile or a.run) else None
    results = verify_many(a.paths, compile=a.compile, run=a.run, sanitizer=a.sanitizer, jobs=a.jobs,
                          run_jobs=a.run_jobs, timeout=a.timeout, results_path=a.results, progress=progress,
                          compile_timeout=a.compile_timeout, sandboxed=not a.no_sandbox, notice=sys.stderr)
    sys.stdout.write(format_results(results))
    return 0 if all_ok(results) else VerifyError.exit_code
