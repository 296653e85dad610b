"""Triton artifact checks: compile the entry for sm_90 on CPU, and run the invocation example.

``compile_artifact`` reads the ``VKC_COMPILE`` literal that the Triton invoker embeds in the
invocation example (signature, constexprs and attributes captured from vLLM's wrapper at the
model's FULL shapes) and calls ``triton.compile(ASTSource(...), target=GPUTarget("cuda", 90, 32))``;
no GPU is needed (ptxas ships with Triton).  ``run_artifact`` saves the source under the name
the script expects and runs it: on a GPU the FULL configuration, else ``SMALL_SANITY=1`` under
``TRITON_INTERPRET=1``; it returns the script's RESULT line.
"""
from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from vkc.result_line import check_fields
from vkc.toolchain.nvcc import BLACKWELL_ONLY
from vkc.toolchain.triton import load_entry, make_ast_source
from vkc.verify import sandbox, untrusted
from vkc.verify.result import CheckResult

RUN_TIMEOUT_S = 600
_RESULT = re.compile(r"^RESULT .*$", re.M)


def read_literal(code: str, name: str) -> Any:
    """The value of a module-level ``NAME = <literal>`` in ``code`` (ast.literal_eval), or None."""
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def compile_artifact(path: str, artifact: dict) -> list[CheckResult]:
    """Compile the Triton entry for sm_90 with the traced signature/constexprs (CPU only)."""
    try:
        kernel = artifact["kernel"]
        code = kernel["invocation_example"]
        spec = read_literal(code, "VKC_COMPILE")
    except (KeyError, SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as e:
        return [CheckResult(path, "compile", False, f"cannot read VKC_COMPILE: {type(e).__name__}: {e}")]
    if not spec:
        return [CheckResult(path, "compile", False, "invocation example has no VKC_COMPILE literal")]
    refused = untrusted.refuse_triton_import(path, artifact, "compile")  # before any of it executes
    try:
        kernel_file = untrusted.artifact_file_name(artifact, None)  # vkc's name, not the example's
    except ValueError as e:
        return [refused or CheckResult(path, "compile", False, f"refused: {e}")]
    if refused:
        return [refused]
    try:
        import triton
        from triton.backends.compiler import GPUTarget
    except ImportError as e:
        return [CheckResult(path, "compile", False, f"triton not importable: {e}")]
    target = tuple(spec.get("target", ("cuda", 90, 32)))
    note = ""
    with tempfile.TemporaryDirectory(prefix="vkc-compile-") as tmp:
        src = Path(tmp) / kernel_file
        src.write_text(kernel["source_code"])
        try:
            fn = load_entry(src, spec["entry"])
            ast_src = make_ast_source(fn, spec["signature"], spec["constexprs"], spec.get("attrs", {}))
            try:
                ck = _compile_quiet(triton, ast_src, GPUTarget(*target), spec)
            except Exception as e:
                m = BLACKWELL_ONLY.search(str(e))
                if not (m and target[:2] == ("cuda", 90)):
                    raise
                # PTX that only Blackwell has (fp4 conversions): the kernel is meant for sm_100
                note = f" (sm_90 ptxas rejects Blackwell-only PTX {m['name']})"
                target = ("cuda", 100, 32)
                ck = _compile_quiet(triton, ast_src, GPUTarget(*target), spec)
        except Exception as e:  # noqa: BLE001  (any compiler failure is the finding)
            return [CheckResult(path, "compile", False, f"{type(e).__name__}: {compile_error_text(e)}",
                                {"error": str(e)[-4000:]})]
    md = getattr(ck, "metadata", None)
    shared = getattr(md, "shared", None)
    arch = f"sm_{target[1]}"
    details = {"triton": triton.__version__, "target": arch, "shared_bytes": shared,
               "num_warps": spec["num_warps"], "num_stages": spec["num_stages"]}
    reason = f"{arch} with triton {triton.__version__}" + (f", shared={shared} B" if shared is not None else "") + note
    return [CheckResult(path, "compile", True, reason, details)]




def _compile_quiet(triton: Any, ast_src: Any, target: Any, spec: dict) -> Any:
    """triton.compile without the PTX dump Triton prints when ptxas fails (it is in the error)."""
    import contextlib
    import io

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        return triton.compile(ast_src, target=target,
                              options={"num_warps": spec["num_warps"], "num_stages": spec["num_stages"]})


def compile_error_text(exc: BaseException) -> str:
    """One line for a Triton compiler error: the position and what went wrong, without the
    source excerpt it quotes (``at 85:18:`` + excerpt + ``^`` + message -> ``at 85:18: message``)."""
    text = str(exc)
    pos = re.match(r"\s*(at \d+:\d+):", text)
    lines = text.splitlines()
    caret = max((i for i, ln in enumerate(lines) if ln.strip() == "^" or ln.rstrip().endswith("^")), default=None)
    msg = " ".join(" ".join(lines[caret + 1:]).split()) if caret is not None else ""
    inner = exc.__cause__ or exc.__context__
    if caret is not None and not msg and inner is not None and inner is not exc:
        return (f"{pos.group(1)}: " if pos else "") + compile_error_text(inner)
    if caret is not None:
        return (f"{pos.group(1)}: " if pos else "") + (msg or "error")[:300]
    ptxas = re.search(r"line \d+; error\s*:\s*(.+)", text) or re.search(r"error\s*:\s*(.+)", text)
    if ptxas:
        return "ptxas: " + ptxas.group(1).strip()[:300]
    return " ".join(text.split())[:400]


def _has_gpu() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def run_artifact(path: str, artifact: dict, *, timeout: int = RUN_TIMEOUT_S, small: bool | None = None,
                 sandboxed: bool = True, sanitizer: bool = False) -> list[CheckResult]:
    """Run the invocation example (GPU: FULL; else SMALL_SANITY under TRITON_INTERPRET=1); with
    ``sanitizer`` on a GPU also once more at SMALL under ``compute-sanitizer --tool memcheck`` ("sanitizer":
    one repetition, PyTorch's caching allocator off so every buffer is its own allocation and an
    out-of-bounds access is not hidden inside a neighbour's pool block)."""
    kernel = artifact["kernel"]
    code = kernel["invocation_example"]
    try:
        kernel_file = read_literal(code, "KERNEL_FILE")
    except (SyntaxError, ValueError) as e:
        return [CheckResult(path, "run", False, f"invocation example does not parse: {e}")]
    if not kernel_file:
        return [CheckResult(path, "run", False, "invocation example has no KERNEL_FILE")]
    try:
        kernel_file = untrusted.artifact_file_name(artifact, kernel_file, reserved=("invoke_example.py",))
    except ValueError as e:
        return [CheckResult(path, "run", False, f"refused: {e}")]
    gpu = _has_gpu()
    use_small = (not gpu) if small is None else small
    env = dict(os.environ)
    if use_small:
        env["SMALL_SANITY"] = "1"
        if not gpu:
            env["TRITON_INTERPRET"] = "1"
    with tempfile.TemporaryDirectory(prefix="vkc-run-") as tmp:
        (Path(tmp) / kernel_file).write_text(kernel["source_code"])
        script = Path(tmp) / "invoke_example.py"
        script.write_text(code)
        out = [_run_script(path, "run", [sys.executable, str(script)], Path(tmp), env, timeout, sandboxed,
                           gpu=gpu, small=use_small)]
        if sanitizer and gpu:
            tool = shutil.which("compute-sanitizer") or "compute-sanitizer"
            senv = {**dict(os.environ), "SMALL_SANITY": "1", "VKC_ITERS": "1", "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"}
            out.append(_run_script(path, "sanitizer", [tool, "--tool", "memcheck", "--error-exitcode", "99",
                                                       sys.executable, str(script)],
                                   Path(tmp), senv, timeout, sandboxed, gpu=gpu, small=True))
    return out


def _run_script(path: str, check_name: str, argv: list[str], tmp: Path, env: dict[str, str], timeout: int,
                sandboxed: bool, *, gpu: bool, small: bool) -> CheckResult:
    try:
        cmd, env = sandbox.wrap(argv, tmp, env, enabled=sandboxed)
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as e:
        return CheckResult(path, check_name, False, f"{argv[0]} not found ({e.strerror})")
    except subprocess.TimeoutExpired:
        return CheckResult(path, check_name, False, f"timed out after {timeout}s")
    lines = _RESULT.findall(proc.stdout)
    check = check_fields(lines[0]) if len(lines) == 1 else {}
    details = {"gpu": gpu, "small": small, "stdout": proc.stdout[-2000:], "sandbox": sandbox.sandbox_mode(sandboxed),
               **check}
    if check.get("check") == "FAIL":
        return CheckResult(path, check_name, False, lines[0], details)
    if proc.returncode != 0 or len(lines) != 1:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])[:400]
        return CheckResult(path, check_name, False, f"exit {proc.returncode}, {len(lines)} RESULT line(s): {tail}",
                           {"stdout": proc.stdout[-2000:], "stderr": proc.stderr[-2000:]})
    return CheckResult(path, check_name, True, lines[0], details)


