"""``vkc fidelity DIR``: does the extracted kernel compile to the same code as vLLM's original?

Triton: the extracted entry and the original JITFunction (imported from the vLLM tree by
module + qualname in a subprocess, Autotuner/Heuristics unwrapped) are compiled for sm_90 with
the artifact's VKC_COMPILE signature/constexprs/attrs; their TTIR is compared after dropping
locations and normalising symbol names (:func:`vkc.fidelity.compare.normalize_ttir`).

CUDA: the chosen instantiation (the ``// VKC_INSTANTIATE:`` markers) is forced in the extracted
unit and in the ORIGINAL translation unit (the wrapper's ``csrc/*.cu``, else the kernel's file;
a header is wrapped in a one-line TU), both go through ``nvcc -ptx`` for sm_90 with vLLM's
flags (the original also with ``-I csrc -DUSE_CUDA`` and a one-line ``cublas_v2.h`` stub), and
the kernel's ``.entry`` bodies are compared after normalisation
(:func:`vkc.fidelity.compare.normalize_ptx`).

Writes ``DIR/fidelity_results.json``: ``{"summary": {...}, "results": [per artifact]}``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import vkc
from vkc.export.inputs import ArtifactRecord, load_dir
from vkc.export.provenance import literals, parse_provenance
from vkc.fidelity.compare import (
    diff_summary,
    drop_internal_ids,
    normalize_ptx,
    normalize_ttir,
    ptx_entries,
)
from vkc.toolchain.nvcc import BLACKWELL_ONLY, first_error, instantiation_source, nvcc_flags

TRITON_TIMEOUT_S = 600
NVCC_TIMEOUT_S = 600
# declarations only (the original TU is compiled to PTX, never linked); what vLLM's csrc uses
CUBLAS_STUB = ("typedef struct cublasContext *cublasHandle_t;\n"
               "typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;\n"
               "typedef int cublasStatus_t;\n"
               "cublasStatus_t cublasHgemm(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,\n"
               "                           const void*, const void*, int, const void*, int, const void*, void*, int);\n")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _result(art: ArtifactRecord, status: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"file": art.file, "name": art.name, "kernel_type": art.kernel_type, "status": status,
            "reason": reason, **extra}


# ----------------------------------------------------------------------------- Triton

def _triton_worker(req: dict[str, Any], tree_root: str, cache_dir: str) -> dict[str, Any]:
    env = dict(os.environ)
    env["CUDA_VISIBLE_DEVICES"] = ""
    env.pop("TRITON_INTERPRET", None)
    env["TRITON_CACHE_DIR"] = cache_dir
    env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(vkc.__file__).resolve().parent.parent)]
                                        + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    rc, out, err = _run_group([sys.executable, "-m", "vkc.fidelity.triton_worker"], json.dumps(req), env,
                              tree_root, TRITON_TIMEOUT_S)
    if rc is None:
        return {"ok": False, "error": f"timed out after {TRITON_TIMEOUT_S}s"}
    try:
        return json.loads(out)
    except ValueError:
        tail = " | ".join((err or "").strip().splitlines()[-3:])[:400]
        return {"ok": False, "error": f"worker exited {rc}: {tail}"}


def _run_group(cmd: list[str], stdin: str, env: dict[str, str], cwd: str,
               timeout: float) -> tuple[int | None, str, str]:
    """Run ``cmd`` in its own process group; on timeout kill the whole group (Triton's ptxas
    children included) and return rc None."""
    import signal

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.communicate()
        return None, "", ""
    return proc.returncode, out, err


def triton_fidelity(art: ArtifactRecord, tree_root: str) -> dict[str, Any]:
    prov = parse_provenance("triton", art.invocation_example)
    lit = literals(art.invocation_example, ("VKC_COMPILE", "KERNEL_FILE"))
    spec = lit.get("VKC_COMPILE")
    if not spec:
        return _result(art, "error", "invocation example has no VKC_COMPILE literal")
    if not (prov.module and prov.kernel_symbol):
        return _result(art, "error", "header does not name the original kernel (file:line / qualname)")
    from vkc.invoke.common import H100_PROFILE

    spec = json.loads(json.dumps(spec))  # tuples -> lists, as the worker will see them
    with tempfile.TemporaryDirectory(prefix="vkc-fid-") as td:
        src = Path(td) / (lit.get("KERNEL_FILE") or "kernel.py")
        src.write_text(art.source_code, encoding="utf-8")
        ext = _triton_worker({"mode": "extracted", "compile": spec, "src_path": str(src)}, tree_root,
                             str(Path(td) / "cache-x"))
        orig = _triton_worker({"mode": "original", "compile": spec, "tree_root": tree_root, "module": prov.module,
                               "qualname": prov.kernel_symbol, "profile": H100_PROFILE}, tree_root,
                              str(Path(td) / "cache-o"))
    if not ext.get("ok"):
        both = "" if orig.get("ok") else " (the original fails too with VKC_COMPILE: " + orig.get("error", "?")[:160] + ")"
        return _result(art, "error", "extracted kernel does not compile: " + ext.get("error", "?")[:240] + both,
                       original_compiles=bool(orig.get("ok")))
    if not orig.get("ok"):
        return _result(art, "error", f"original {prov.module}:{prov.kernel_symbol} does not compile: "
                       + orig.get("error", "?"))
    a = normalize_ttir(ext["ttir"], ext["fn_name"])
    b = normalize_ttir(orig["ttir"], orig["fn_name"])
    extra = {"ir": "ttir", "original": f"{prov.module}:{prov.kernel_symbol}", "sha_extracted": _sha(a),
             "sha_original": _sha(b), "lines": len(a.splitlines())}
    if orig.get("stubbed"):
        extra["stubbed_imports"] = orig["stubbed"]   # packages not installed here, stubbed to import the original
    if a == b:
        return _result(art, "match", "normalised TTIR identical", **extra)
    d = diff_summary(a, b)
    return _result(art, "mismatch", f"TTIR differs: {d['only_in_a']} line(s) only in extracted, "
                   f"{d['only_in_b']} only in original", diff=d, **extra)


# ----------------------------------------------------------------------------- CUDA

def _nvcc_ptx(unit: Path, out: Path, extra: list[str], cwd: Path, arch: str = "sm_90") -> tuple[bool, str]:
    cmd = ["nvcc", "-ptx", *nvcc_flags(arch), *extra, "-o", str(out), str(unit)]
    try:
        r = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=cwd, timeout=NVCC_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return False, f"nvcc timed out after {NVCC_TIMEOUT_S}s"
    if r.returncode != 0:
        return False, first_error(r.stderr or r.stdout)
    return True, ""


def original_unit(prov_kernel_file: str | None, prov_wrapper_file: str | None) -> str | None:
    """The csrc file whose TU vLLM compiles the kernel in: the wrapper's .cu, else the kernel's file."""
    for f in (prov_wrapper_file, prov_kernel_file):
        if f and f.endswith(".cu"):
            return f
    return prov_kernel_file


def cuda_fidelity(art: ArtifactRecord, tree_root: str) -> dict[str, Any]:
    if shutil.which("nvcc") is None:
        return _result(art, "skipped", "nvcc not on PATH")
    prov = parse_provenance("cuda", art.invocation_example)
    unit_rel = original_unit(prov.kernel_file, prov.wrapper_file)
    if not unit_rel or not prov.kernel_symbol:
        return _result(art, "error", "header does not name the kernel's file")
    base = prov.kernel_symbol.split("::")[-1]
    insts = prov.instantiations
    root = Path(tree_root)
    with tempfile.TemporaryDirectory(prefix="vkc-fid-") as td:
        wd = Path(td)
        (wd / "stub").mkdir()
        (wd / "stub" / "cublas_v2.h").write_text(CUBLAS_STUB)
        (wd / "extracted.cu").write_text(art.source_code + "\n// --- vkc fidelity: instantiation(s)\n"
                                         + instantiation_source(insts), encoding="utf-8")
        (wd / "original.cu").write_text(f'#include "{(root / unit_rel).as_posix()}"\n' + instantiation_source(insts),
                                        encoding="utf-8")
        arch = "sm_90"
        ok, err = _nvcc_ptx(wd / "extracted.cu", wd / "extracted.ptx", [], wd)
        if not ok and BLACKWELL_ONLY.search(err):   # fp4 kernels: vLLM builds them for sm_100+
            arch = "sm_100a"
            ok, err = _nvcc_ptx(wd / "extracted.cu", wd / "extracted.ptx", [], wd, arch=arch)
        if not ok:
            return _result(art, "error", "extracted unit does not compile: " + err)
        ok, err = _nvcc_ptx(wd / "original.cu", wd / "original.ptx",
                            [f"-I{root / 'csrc'}", f"-I{wd / 'stub'}", "-DUSE_CUDA"], wd, arch=arch)
        if not ok:
            return _result(art, "error", f"original {unit_rel} does not compile: " + err)
        # anonymous-namespace kernels: their mangled names embed a hash of the file name
        ext = {drop_internal_ids(k): v for k, v in ptx_entries((wd / "extracted.ptx").read_text()).items()}
        org = {drop_internal_ids(k): v for k, v in ptx_entries((wd / "original.ptx").read_text()).items()}
    names = sorted(n for n in ext if base in n)
    extra: dict[str, Any] = {"ir": "ptx", "original": unit_rel, "entries": names}
    if not names:
        return _result(art, "error", f"extracted PTX has no .entry for {base} (entries: {sorted(ext)[:5]})", **extra)
    mism, diffs = [], {}
    for n in names:
        if n not in org:
            cands = sorted(o for o in org if base in o)
            mism.append(n)
            diffs[n] = {"missing_in_original": True, "original_candidates": cands[:6]}
            continue
        a, b = normalize_ptx(ext[n]), normalize_ptx(org[n])
        if a != b:
            mism.append(n)
            diffs[n] = diff_summary(a, b)
        extra.setdefault("lines", 0)
        extra["lines"] += len(a.splitlines())
    if not mism:
        return _result(art, "match", f"normalised PTX of {len(names)} .entry identical", **extra)
    first = diffs[mism[0]]
    why = ("entry absent from the original PTX" if first.get("missing_in_original")
           else f"{first['only_in_a']} line(s) only in extracted, {first['only_in_b']} only in original")
    return _result(art, "mismatch", f"PTX of {len(mism)}/{len(names)} .entry differs: {why}", diff=diffs, **extra)


# ----------------------------------------------------------------------------- driver

def run_fidelity(directory: str | os.PathLike[str], *, names: list[str] | None = None, tree_root: str | None = None,
                 progress: Callable[[str], None] | None = None, write: bool = True, jobs: int = 1,
                 every: int = 1) -> dict[str, Any]:
    """Compare every artifact of DIR (or those whose name/file is in ``names``; with ``every`` K
    only every K-th of them, in file order) with vLLM's original, ``jobs`` at a time (each check
    runs its compilers in subprocesses); writes ``DIR/fidelity_results.json`` (when ``write``)
    and returns its content."""
    from concurrent.futures import ThreadPoolExecutor

    bd = load_dir(directory)
    if tree_root is None:
        from vkc.source import resolve_source
        tree_root = str(resolve_source().root)
    chosen = [art for art in bd.artifacts
              if not names or art.name in names or art.file in names or Path(art.file).stem in names]
    chosen = chosen[::max(1, every)]

    def one(art: ArtifactRecord) -> dict[str, Any]:
        t0 = time.monotonic()
        fn = triton_fidelity if art.kernel_type == "triton" else cuda_fidelity
        try:
            r = fn(art, tree_root)
        except Exception as e:  # noqa: BLE001  (one crash must not hide the others)
            r = _result(art, "error", f"fidelity check crashed: {type(e).__name__}: {e}")
        r["seconds"] = round(time.monotonic() - t0, 1)
        if progress:
            progress(f"{r['status']:8} {art.name}: {r['reason']}")
        return r

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        results = list(pool.map(one, chosen))
    counts = {s: sum(r["status"] == s for r in results) for s in ("match", "mismatch", "error", "skipped")}
    compared = counts["match"] + counts["mismatch"]
    summary = {"artifacts": len(results), "every": max(1, every), "compared": compared, **counts,
               "mismatch_rate": round(counts["mismatch"] / compared, 4) if compared else None}
    out = {"summary": summary, "results": results}
    if write:
        from vkc.batch.jsonio import write_json_atomic
        write_json_atomic(str(Path(directory) / "fidelity_results.json"), out, sort_keys=True)
    return out


def format_fidelity(out: dict[str, Any]) -> str:
    s = out["summary"]
    lines = [f"{r['status']:8} {r['name']}: {r['reason']}" for r in out["results"]]
    rate = "n/a" if s["mismatch_rate"] is None else f"{100 * s['mismatch_rate']:.1f}%"
    lines.append(f"{s['artifacts']} artifacts: {s['match']} match, {s['mismatch']} mismatch, {s['error']} error, "
                 f"{s['skipped']} skipped; mismatch rate {rate}")
    return "\n".join(lines) + "\n"
