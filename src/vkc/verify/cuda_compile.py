"""nvcc checks of CUDA artifacts: compile the unit (with the invoker's instantiation),
check the kernel symbol, build and run the invocation example.

The invocation example names the instantiation it launches with one marker line per
instantiation (emit it with :func:`vkc.toolchain.nvcc.instantiation_line`)::

    // VKC_INSTANTIATE: vllm::rms_norm_kernel<c10::BFloat16, 8, 2, true>

For each marker the unit gets ``static void* __vkc_inst_N = (void*)&<expr>;`` appended,
which forces the template instantiation (and picks the right enable_if overload).  A
non-template kernel needs no marker.  The unit is saved as ``<stem>.cu`` where stem is
``vkc.write.names.safe_stem(name)``; an invocation that is a full host program
(it defines ``main``) includes it with ``#include "<stem>.cu"``.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from vkc.result_line import check_fields
from vkc.toolchain.cutlass import find_cutlass, uses_cutlass
from vkc.toolchain.nvcc import BLACKWELL_ONLY, first_error, instantiation_source, instantiations, nvcc_flags
from vkc.verify.result import CheckResult


def _write_unit(tmp: Path, stem: str, source: str, insts: list[str]) -> Path:
    body = source
    if insts:
        body += "\n// --- vkc: explicit instantiation(s) from the invocation example\n" + instantiation_source(insts)
    p = tmp / f"{stem}.cu"
    p.write_text(body, encoding="utf-8")
    return p


def compile_source(source: str, stem: str, insts: list[str], workdir: Path,
                   timeout: int = 300, arch: str = "sm_90") -> tuple[bool, str, Path]:
    """nvcc -c the unit; returns (ok, stderr tail, object path)."""
    unit = _write_unit(workdir, stem, source, insts)
    obj = workdir / f"{stem}.o"
    cmd = ["nvcc", "-c", *nvcc_flags(arch), "-o", str(obj), str(unit)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    except subprocess.TimeoutExpired:
        return False, "nvcc timed out", obj
    return r.returncode == 0, (r.stderr or r.stdout)[-4000:], obj


def has_symbol(obj: Path, name: str) -> bool:
    for tool in (["cuobjdump", "-symbols"], ["nm"]):
        if shutil.which(tool[0]) is None:
            continue
        r = subprocess.run([*tool, str(obj)], capture_output=True, text=True)
        if r.returncode == 0 and name in r.stdout:
            return True
    return False


def _stem(path: str, artifact: dict) -> str:
    from vkc.naming import safe_stem
    try:
        return safe_stem(artifact.get("name") or Path(path).stem)
    except Exception:  # noqa: BLE001 - any unusable name: a fixed stem
        return "kernel_unit"


def compile_artifact(path: str, artifact: dict) -> list[CheckResult]:
    """'compile-unit' (+ symbol) and, for a full host program, 'compile-invocation'."""
    if shutil.which("nvcc") is None:
        return [CheckResult(path, "compile-unit", False, "nvcc not on PATH")]
    k = artifact.get("kernel", {})
    src, inv = k.get("source_code", ""), k.get("invocation_example", "")
    stem = _stem(path, artifact)
    insts = instantiations(inv)
    name = re.split(r"[:@]", artifact.get("name", ""))[-1] if artifact.get("name") else ""
    kname = (insts[0].split("<")[0].split("::")[-1] if insts else None) or _global_name(src) or name
    results = []
    arch, note = "sm_90", ""
    cutlass = find_cutlass() if uses_cutlass(src) else None
    if uses_cutlass(src) and cutlass is None:
        return [CheckResult(path, "compile-unit", False,
                            "needs CUTLASS headers: none found (vkc verify --cutlass PATH, or pip install nvidia-cutlass)")]
    with tempfile.TemporaryDirectory(prefix="vkc-nvcc-") as td:
        wd = Path(td)
        ok, err, obj = compile_source(src, stem, insts, wd)
        m = None if ok else BLACKWELL_ONLY.search(err)
        if m:  # fp4 conversions etc.: vLLM builds these kernels for sm_100+ only
            arch, note = "sm_100a", f"sm_100a (sm_90 ptxas rejects the Blackwell-only {m['kind']} '{m['name']}')"
            ok, err, obj = compile_source(src, stem, insts, wd, arch=arch)
        if not ok:
            results.append(CheckResult(path, "compile-unit", False, first_error(err), {"stderr": err}))
            return results
        sym = has_symbol(obj, kname)
        data = {"instantiations": insts, "arch": arch, **({"cutlass": cutlass.describe()} if cutlass else {})}
        if cutlass is not None:
            note = "; ".join(n for n in (note, f"compiled against {cutlass.describe()}") if n)
        results.append(CheckResult(path, "compile-unit", sym,
                                   note if sym else f"object lacks a symbol for {kname}", data))
    if re.search(r"\bint\s+main\s*\(", inv):
        _prog, build_err = build_program(path, artifact, arch=arch)
        results.append(CheckResult(path, "compile-invocation", build_err is None,
                                   "" if build_err is None else first_error(build_err),
                                   {"stderr": (build_err or "")[-4000:]}))
    return results


def program_key(artifact: dict, arch: str = "sm_90") -> str:
    """Content key of the host program: unit source, invocation, nvcc flags and version."""
    k = artifact.get("kernel", {})
    h = hashlib.sha256()
    for part in (k.get("source_code", ""), k.get("invocation_example", ""), " ".join(nvcc_flags(arch)),
                 _nvcc_version()):
        h.update(part.encode("utf-8", "replace"))
        h.update(b"\0")
    return h.hexdigest()[:32]


def _programs_dir() -> Path:
    from vkc.source import cache_dir
    return Path(cache_dir()) / "programs"


def build_program(path: str, artifact: dict, timeout: int = 600,
                  arch: str = "sm_90") -> tuple[Path | None, str | None]:
    """Build the invocation program once per content key (``cache_dir()/programs/<key>``);
    returns (binary, None) or (None, nvcc's stderr).  Concurrent builders of one key are safe:
    each builds in its own folder and the binary is renamed into place."""
    k = artifact.get("kernel", {})
    final = _programs_dir() / program_key(artifact, arch) / "prog"
    if final.is_file():
        return final, None
    final.parent.mkdir(parents=True, exist_ok=True)
    stem = _stem(path, artifact)
    with tempfile.TemporaryDirectory(prefix="vkc-build-", dir=final.parent) as td:
        wd = Path(td)
        _write_unit(wd, stem, k.get("source_code", ""), [])
        (wd / "invocation.cu").write_text(k.get("invocation_example", ""), encoding="utf-8")
        try:
            r = subprocess.run(["nvcc", *nvcc_flags(arch), "-o", str(wd / "prog"), str(wd / "invocation.cu")],
                               capture_output=True, text=True, cwd=wd, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, f"error: nvcc timed out after {timeout}s"
        if r.returncode != 0:
            return None, r.stderr or r.stdout or "nvcc failed"
        os.replace(wd / "prog", final)
    return final, None


def prepare_artifact(path: str, artifact: dict) -> list[CheckResult]:
    """Before a run: build the host program into the cache (parallel-safe); no result on success."""
    inv = artifact.get("kernel", {}).get("invocation_example", "")
    if shutil.which("nvcc") is None or not re.search(r"\bint\s+main\s*\(", inv):
        return []
    _prog, err = build_program(path, artifact)
    return [] if err is None else [CheckResult(path, "run", False, "build failed: " + first_error(err))]


_NVCC_VERSION: str | None = None


def _nvcc_version() -> str:
    global _NVCC_VERSION
    if _NVCC_VERSION is None:
        try:
            _NVCC_VERSION = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout.strip()
        except OSError:
            _NVCC_VERSION = ""
    return _NVCC_VERSION


def run_artifact(path: str, artifact: dict, timeout: int = 300, *, sanitizer: bool = False,
                 sandboxed: bool = True) -> list[CheckResult]:
    """Build and run the invocation program when a GPU is present ("run"); with ``sanitizer``
    also run it once more under ``compute-sanitizer --tool memcheck`` ("sanitizer", one launch)."""
    if not _have_gpu():
        return [CheckResult(path, "run", False, "no GPU")]
    k = artifact.get("kernel", {})
    inv = k.get("invocation_example", "")
    if not re.search(r"\bint\s+main\s*\(", inv):
        return [CheckResult(path, "run", False, "invocation example is not a host program")]
    prog, err = build_program(path, artifact)
    if prog is None:
        return [CheckResult(path, "run", False, "build failed: " + first_error(err or ""))]
    with tempfile.TemporaryDirectory(prefix="vkc-run-") as td:
        wd = Path(td)
        results = [_run_prog([str(prog)], path, "run", wd, timeout, {}, sandboxed)]
        if "static const char* const kScript[]" in inv:     # the example carries a reference: its check at SMALL
            dump = wd / "check"
            dump.mkdir()
            results.append(_run_prog([str(prog)], path, "reference-check", wd, timeout,
                                     {"SMALL_SANITY": "1", "VKC_DUMP_DIR": str(dump), "VKC_PYTHON": sys.executable},
                                     sandboxed))
        if sanitizer:
            tool = shutil.which("compute-sanitizer") or "compute-sanitizer"
            results.append(_run_prog([tool, "--tool", "memcheck", "--error-exitcode", "99", str(prog)],
                                     path, "sanitizer", wd, timeout, {"VKC_ITERS": "1"}, sandboxed))
        return results


def _run_prog(cmd: list[str], path: str, check: str, wd: Path, timeout: int, env: dict,
              sandboxed: bool = True) -> CheckResult:
    from vkc.verify.sandbox import wrap
    cmd, full_env = wrap(cmd, wd, {**os.environ, **env}, enabled=sandboxed)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=wd, timeout=timeout, env=full_env)
    except FileNotFoundError as exc:
        return CheckResult(path, check, False, f"{cmd[0]} not found ({exc.strerror})")
    except subprocess.TimeoutExpired:
        return CheckResult(path, check, False, f"timed out after {timeout}s")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    fields = check_fields(lines[-1]) if lines else {}
    if fields.get("check") in ("FAIL", "ERROR"):     # the reference check's verdict (issue 13)
        return CheckResult(path, check, False, lines[-1][:300], {"stdout": p.stdout[-4000:], **fields})
    if p.returncode == 0 and lines:
        return CheckResult(path, check, True, lines[-1][:300], {"stdout": p.stdout[-4000:], **fields})
    tail = " | ".join((p.stderr + "\n" + p.stdout).strip().splitlines()[-4:])[:400]
    return CheckResult(path, check, False, f"exit {p.returncode}: {tail}",
                       {"stdout": p.stdout[-4000:], "stderr": p.stderr[-4000:]})


def _have_gpu() -> bool:
    if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
        return False
    if shutil.which("nvidia-smi") is None:
        return False
    r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return r.returncode == 0 and "GPU" in r.stdout


def _global_name(src: str) -> str | None:
    """The first ``__global__`` function of the unit (the rubric's parser)."""
    from vkc.verify.rubric import global_names
    names = global_names(src, in_order=True)
    return names[0] if names else None
