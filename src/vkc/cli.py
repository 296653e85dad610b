"""The ``vkc`` command line: parse arguments, call one pipeline entry, map errors to exit codes.

Every user error is one line on stderr (``vkc: error: ...``) and a non-zero exit code
from :mod:`vkc.errors`; tracebacks only with ``--debug`` or ``VKC_DEBUG=1``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from vkc import __version__, api
from vkc.errors import UsageError, VerifyError, VkcError

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, our exit code, no usage dump
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def _add_source_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--vllm", metavar="PATH", help="use a local vLLM checkout or unpacked sdist")
    g.add_argument("--vllm-version", metavar="X", help="use another vLLM release from the package index")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="vkc", description="vLLM Kernel Collector")
    p.add_argument("--version", action="version", version=f"vkc {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("collect", help="write kernels_out/<KERNEL>.json for one kernel")
    c.add_argument("kernel", metavar="KERNEL_NAME", nargs="?", help="omit with --all")
    c.add_argument("--model", action="append",
                   help="Hugging Face model id, path to a config.json, or a variant id (MODEL@kv-cache-dtype=fp8, "
                        "defaults:ARCH; README, Model configs) (repeatable with --all)")
    c.add_argument("--workload", choices=("prefill", "decode"), action="append",
                   help="repeatable with --all")
    c.add_argument("--out", default="kernels_out", metavar="DIR")
    _add_source_args(c)

    ls = sub.add_parser("list", help="list the kernels of the vLLM tree")
    ls.add_argument("--type", choices=("triton", "cuda"))
    ls.add_argument("--role", choices=("entry", "helper", "orphan"))
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--no-cache", action="store_true", help="rebuild the index even if cached")
    _add_source_args(ls)

    m = sub.add_parser("model", help="model configs")
    msub = m.add_subparsers(dest="model_cmd", metavar="SUBCOMMAND", parser_class=_Parser)
    show = msub.add_parser("show", help="show the normalised config of a model")
    show.add_argument("model", metavar="MODEL")
    show.add_argument("--json", action="store_true")
    show.add_argument("--offline", action="store_true", help="do not contact the hub")
    from vkc.modeltrace.cli_hooks import add_model_kernels_args
    add_model_kernels_args(msub)

    v = sub.add_parser("verify", help="check artifacts against the spec's rubric")
    v.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    v.add_argument("--compile", action="store_true", help="also compile (nvcc / triton for sm_90)")
    v.add_argument("--run", action="store_true", help="also run the invocation example")
    v.add_argument("--sanitizer", action="store_true",
                   help="with --run: also run each example under compute-sanitizer memcheck (CUDA once, Triton once at SMALL)")
    v.add_argument("--cutlass", metavar="PATH",
                   help="CUTLASS checkout (or its include folder) for the kernels that include CUTLASS/CuTe headers "
                        "(default: $VKC_CUTLASS, else the nvidia-cutlass wheel's headers)")
    from vkc.batch.cli_hooks import add_batch_args
    add_batch_args(c, v)
    from vkc.export.cli_hooks import add_export_args
    from vkc.fidelity.cli_hooks import add_fidelity_args
    from vkc.report.cli_hooks import add_report_args
    add_report_args(sub)
    add_export_args(sub)
    add_fidelity_args(sub)
    from vkc.diff.cli_hooks import add_diff_args
    add_diff_args(sub)
    return p


def _run(a: argparse.Namespace) -> int:
    if a.cmd == "collect":
        from vkc.batch.cli_hooks import check_collect_args, run_collect_all
        if check_collect_args(a):  # --all; else --model/--workload become single values
            return run_collect_all(a)
        res = api.collect(a.kernel, model=a.model, workload=a.workload, out_dir=a.out,
                          vllm_path=a.vllm, vllm_version=a.vllm_version)
        print(res.line, flush=True)
        return 0
    if a.cmd == "list":
        from vkc.index.listing import format_kernels
        kernels = api.list_kernels(lang=a.type, role=a.role, vllm_path=a.vllm, vllm_version=a.vllm_version,
                                   use_cache=not a.no_cache)
        sys.stdout.write(format_kernels(kernels, as_json=a.json))
        return 0
    if a.cmd == "model":
        if a.model_cmd == "kernels":
            from vkc.modeltrace.cli_hooks import run_model_kernels
            return run_model_kernels(a)
        if a.model_cmd != "show":
            raise UsageError("missing subcommand", hint="vkc model show MODEL")
        from vkc.modelcfg import format_model, model_to_json
        cfg = api.load_model(a.model, offline=True if a.offline else None)
        if a.json:  # warnings are in the JSON; repeat them on stderr for people
            print(json.dumps(model_to_json(cfg), indent=2, sort_keys=False))
            for w in cfg.warnings:
                print(f"vkc: warning: {w}", file=sys.stderr)
        else:
            print(format_model(cfg))
        return 0
    if a.cmd == "verify":
        from vkc.verify import all_ok, format_results
        if a.cutlass:
            _use_cutlass(a.cutlass)
        results = api.verify(a.paths, compile=a.compile, run=a.run, sanitizer=a.sanitizer, jobs=a.jobs,
                             run_jobs=a.run_jobs, timeout=a.timeout, compile_timeout=a.compile_timeout, results_path=a.results,
                             sandboxed=not a.no_sandbox, log=sys.stderr)
        sys.stdout.write(format_results(results))
        return 0 if all_ok(results) else VerifyError.exit_code
    if a.cmd == "report":
        from vkc.report.cli_hooks import run_report
        return run_report(a)
    if a.cmd == "export":
        from vkc.export.cli_hooks import run_export
        return run_export(a)
    if a.cmd == "diff":
        from vkc.diff.cli_hooks import run_diff
        return run_diff(a)
    if a.cmd == "fidelity":
        from vkc.fidelity.cli_hooks import run_fidelity_cmd
        return run_fidelity_cmd(a)
    raise UsageError("missing command", hint="see 'vkc --help'")


def _use_cutlass(path: str) -> None:
    """``--cutlass PATH``: checked now (a folder without cutlass/cutlass.h is a usage error), then
    passed to the compile workers as ``VKC_CUTLASS``."""
    from vkc.toolchain.cutlass import ENV, find_cutlass

    os.environ[ENV] = path
    if find_cutlass() is None:
        raise UsageError(f"--cutlass {path}: no cutlass/cutlass.h under it or its include/ folder",
                         hint="pass a CUTLASS checkout (e.g. of the tag vLLM's CMakeLists.txt pins) or its include folder")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("VKC_DEBUG", "") not in ("", "0")
    try:
        a = build_parser().parse_args(argv)
        return _run(a)
    except VkcError as exc:
        if debug:
            raise
        from vkc.batch.cli_hooks import one_line
        print(f"vkc: error: {one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vkc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # an internal bug: still one line unless --debug
        if debug:
            raise
        print(f"vkc: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
