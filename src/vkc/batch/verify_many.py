"""``vkc verify`` over many artifacts: parallel compiles, one-at-a-time runs, crash isolation.

* Folders are searched recursively for ``*.json`` artifacts (so the nested
  ``--all`` layout works), skipping dot-files and the result files
  ``collect_results.json`` / ``verify_results.json``.
* Static rubric checks run in the parent (fast, pure Python).
* ``--compile``: every artifact is compiled in one of ``jobs`` worker processes
  (:mod:`vkc.batch.pool`), so a Triton compile that crashes or hangs loses that
  artifact's result only (``compile`` fails with ``WorkerCrashed`` / ``Timeout``).
* ``--run``: first builds what the runs need in ``jobs`` workers (CUDA host programs,
  into the content-keyed program cache, so ``--compile --run`` builds each once), then
  runs one artifact at a time (one GPU) in a single worker process (``run_jobs`` > 1: that
  many at once, for correctness/memcheck sweeps; the results then say the times were taken
  under contention); each program gets ``timeout`` seconds (passed to the runner, which kills it), and the
  worker itself is killed, with everything it started, ``RUN_GRACE_S`` later (a build
  that hangs).  A crash or hang costs that artifact's ``run`` check only.
* Results: for each folder given, ``<folder>/verify_results.json`` (its artifacts),
  or the one ``results`` path given; details drop bulky ``stdout``/``stderr``.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import vkc
from vkc.batch.jsonio import write_json_atomic
from vkc.batch.pool import imap_isolated
from vkc.batch.progress import PlainProgress
from vkc.errors import VerifyError, VkcError
from vkc.verify.result import CheckResult
from vkc.verify.sandbox import notice as sandbox_notice
from vkc.verify.sandbox import sandbox_mode
from vkc.write.names import is_artifact_file

RESULTS_FILE = "verify_results.json"

COMPILE_TIMEOUT_S = 1800.0     # hard limit per artifact compile (nvcc unit + host program)
RUN_GRACE_S = 600.0            # hard limit per run = timeout + this (building the program)
DEFAULT_RUN_TIMEOUT_S = 300.0
BULKY = ("stdout", "stderr")
MAX_DETAIL_CHARS = 1000


def expand_artifacts(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, str | None]]:
    """(artifact path, folder argument it came from or None); folders recursively, sorted."""
    out: list[tuple[str, str | None]] = []
    for p in paths:
        shown = os.fspath(p)
        if os.path.isdir(shown):
            found = []
            for dirpath, dirnames, filenames in os.walk(shown):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for f in filenames:
                    if is_artifact_file(f):
                        found.append(os.path.join(dirpath, f).replace(os.sep, "/"))
            if not found:
                raise VerifyError(f"folder {shown} holds no *.json artifacts", hint="give artifact files or folders")
            out.extend((f, shown) for f in sorted(found))
        elif os.path.exists(shown):
            out.append((shown, None))
        else:
            raise VerifyError(f"{shown}: no such file or folder", hint="give artifact files or folders")
    if not out:
        raise VerifyError("nothing to verify", hint="give artifact files or folders, e.g. kernels_out/")
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------- worker side


def compile_memory_cap(jobs: int) -> int | None:
    """Bytes of address space one compile worker (and the ptxas/nvcc it starts) may use:
    ``VKC_COMPILE_MEM_GB``, else max(6 GiB, physical memory / (jobs + 1)); None if unknown.
    (A guessed block size once drove one ptxas to 21 GB on a 23 GB machine.)"""
    env = os.environ.get("VKC_COMPILE_MEM_GB")
    if env:
        return int(float(env) * 2**30) if float(env) > 0 else None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    return max(6 * 2**30, total // (jobs + 1))


def _compile_init(mem_cap: int | None = None) -> None:
    """Cap the worker's memory, then import the compilers' Python side up front (so the
    per-task limit measures the compile)."""
    if mem_cap:
        try:
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (mem_cap, mem_cap))
        except (ImportError, ValueError, OSError):
            pass
    import vkc.verify  # noqa: F401
    try:
        import triton  # noqa: F401
    except ImportError:
        pass


def _compile_task(_state: Any, path: str) -> list[CheckResult]:
    """Compile checks of one artifact (static checks are done by the parent)."""
    from vkc.verify import CHECK_IDS, verify_paths
    return [r for r in verify_paths([path], compile=True) if r.check not in CHECK_IDS]


def _prepare_task(_state: Any, path: str) -> list[CheckResult]:
    """Build what a run needs (CUDA: the host program, into the program cache), in parallel;
    returns failed ``run`` results only (a kernel type without a build step returns [])."""
    from vkc.write.schema import loads_artifact

    artifact = loads_artifact(Path(path).read_bytes())
    kernel_type = artifact["kernel"]["kernel_type"]
    try:
        fn = importlib.import_module(f"vkc.verify.{kernel_type}_compile").prepare_artifact
    except (ModuleNotFoundError, AttributeError):
        return []
    try:
        return list(fn(path, artifact))
    except VkcError as exc:
        return [CheckResult(path, "run", False, exc.message)]


def _run_task(_state: Any, task: tuple[str, float, bool, bool]) -> list[CheckResult]:
    """Run one artifact's invocation example with a per-program timeout (sandboxed unless off)."""
    from vkc.write.schema import loads_artifact

    path, timeout, sanitizer, sandboxed = task
    artifact = loads_artifact(Path(path).read_bytes())
    kernel_type = artifact["kernel"]["kernel_type"]
    modname = f"vkc.verify.{kernel_type}_compile"
    try:
        fn = importlib.import_module(modname).run_artifact
    except (ModuleNotFoundError, AttributeError) as exc:
        return [CheckResult(path, "run", False, f"run check not available for {kernel_type} ({exc})")]
    kw: dict[str, Any] = {"timeout": timeout, "sandboxed": sandboxed}
    if sanitizer:
        kw["sanitizer"] = True
    try:
        out = fn(path, artifact, **kw)
    except VkcError as exc:
        return [CheckResult(path, "run", False, exc.message)]
    return [out] if isinstance(out, CheckResult) else list(out)


# --------------------------------------------------------------------------- parent side


def verify_many(paths: Iterable[str | os.PathLike[str]], *, compile: bool = False, run: bool = False,
                sanitizer: bool = False, jobs: int | None = None, run_jobs: int = 1,
                timeout: float = DEFAULT_RUN_TIMEOUT_S, results_path: str | None = None, progress: PlainProgress | None = None,
                compile_timeout: float = COMPILE_TIMEOUT_S, sandboxed: bool = True,
                notice: Any = None) -> list[CheckResult]:
    """Check every artifact; returns the CheckResults grouped by artifact (static, compile, run).

    Writes the result JSON file(s) (see the module docstring).  VerifyError only for
    missing paths / empty folders.  ``--run`` executes the examples' host code: ``notice``
    (a text stream, e.g. stderr) gets one line saying so and whether ``bwrap`` sandboxes it
    (``sandboxed=False``: never)."""
    items = expand_artifacts(paths)
    artifacts = [a for a, _ in items]
    n_workers = jobs if jobs is not None else (os.cpu_count() or 1)
    from vkc.verify import check_artifact

    per: dict[str, list[CheckResult]] = {a: list(check_artifact(a)) for a in artifacts}
    seconds: dict[str, dict[str, float]] = {a: {} for a in artifacts}
    dynamic = [a for a in artifacts
               if not any(r.check in ("json", "schema") and not r.ok for r in per[a])]
    progress = progress or _Silent()
    cap = (compile_memory_cap(n_workers),)
    if compile and dynamic:
        _phase(dynamic, dynamic, _compile_task, "compile", "compile", per, seconds, progress,
               f"compiling {len(dynamic)} artifacts with {n_workers} worker(s)",
               workers=n_workers, init=_compile_init, init_args=cap, task_timeout=compile_timeout)
    runnable = dynamic
    if run and dynamic:
        built = _phase(dynamic, dynamic, _prepare_task, "build", "run", per, seconds, progress,
                       f"building {len(dynamic)} programs with {n_workers} worker(s)",
                       workers=n_workers, init=_compile_init, init_args=cap, task_timeout=compile_timeout)
        runnable = [a for a in dynamic if a in built]
    mode = sandbox_mode(sandboxed)
    if run and runnable:
        if notice is not None:
            notice.write(sandbox_notice(mode))
            notice.flush()
        _phase(runnable, [(a, timeout, sanitizer, sandboxed) for a in runnable], _run_task, "run", "run", per, seconds,
               progress, f"running {len(runnable)} artifacts "
               + ("one at a time" if run_jobs == 1 else f"{run_jobs} at a time") + f" (timeout {timeout:g} s)",
               workers=run_jobs, task_timeout=timeout + RUN_GRACE_S)
    results = [r for a in artifacts for r in per[a]]
    options = {"compile": compile, "run": run, "sanitizer": sanitizer, "timeout": timeout, "jobs": n_workers,
               "run_jobs": run_jobs, "times_under_contention": bool(run and run_jobs > 1),
               "sandbox": mode if run else None}
    for target, members in _result_files(items, results_path).items():
        write_json_atomic(target, results_json(members, per, seconds, options, base=os.path.dirname(target)))
    return results


def _phase(artifacts: list[str], tasks: list[Any], run_one: Any, label: str, check: str,
           per: dict[str, list[CheckResult]], seconds: dict[str, dict[str, float]], progress: PlainProgress,
           title: str, **pool: Any) -> set[str]:
    """Run ``run_one`` for every task in isolated workers; a crashed or hung task becomes a
    failed ``check`` result of its artifact.  Results and seconds (under ``label``) are recorded;
    returns the artifacts whose results all passed."""
    passed: set[str] = set()
    progress.start(len(artifacts), title)
    try:
        for i, out in imap_isolated(tasks, run_one, **pool):
            a = artifacts[i]
            res = out.value if out.error is None else [
                CheckResult(a, check, False, f"{label} {_what(out.kind)}: {out.error}")]
            per[a].extend(res)
            seconds[a][label] = round(out.seconds, 3)
            bad = [r for r in res if not r.ok]
            if not bad:
                passed.add(a)
            progress.advance("ok" if not bad else "failed", a, out.seconds, bad[0].reason[:200] if bad else "")
    finally:
        progress.stop()
    return passed


def _what(kind: str | None) -> str:
    return {"WorkerCrashed": "crashed", "Timeout": "hung"}.get(kind or "", f"failed ({kind})")


def _result_files(items: list[tuple[str, str | None]], results_path: str | None) -> dict[str, list[str]]:
    if results_path:
        return {results_path: [a for a, _ in items]}
    files: dict[str, list[str]] = {}
    for a, folder in items:
        if folder is not None:
            files.setdefault(os.path.join(folder, RESULTS_FILE).replace(os.sep, "/"), []).append(a)
    return files


def slim_details(details: dict[str, Any]) -> dict[str, Any]:
    """Details without stdout/stderr; long strings cut to MAX_DETAIL_CHARS."""
    out = {}
    for k, v in details.items():
        if k in BULKY:
            continue
        if isinstance(v, str) and len(v) > MAX_DETAIL_CHARS:
            v = v[:MAX_DETAIL_CHARS] + "..."
        out[k] = v
    return out


def results_json(artifacts: list[str], per: dict[str, list[CheckResult]], seconds: dict[str, dict[str, float]],
                 options: dict[str, Any], base: str = "") -> dict[str, Any]:
    """The verify_results.json object (artifact paths relative to ``base`` when inside it)."""
    entries: list[dict[str, Any]] = []
    for a in artifacts:
        rel = os.path.relpath(a, base or ".").replace(os.sep, "/")
        shown = rel if not rel.startswith("../") else a
        checks = [{"check": r.check, "ok": r.ok, "reason": r.reason, "details": _jsonable(slim_details(r.details))}
                  for r in per[a]]
        entries.append({"artifact": shown, "ok": all(c["ok"] for c in checks), "seconds": seconds.get(a, {}),
                        "checks": checks})
    failed = [e for e in entries if not e["ok"]]
    return {"vkc": vkc.__version__, "options": options,
            "summary": {"artifacts": len(entries), "ok": len(entries) - len(failed), "failed": len(failed),
                        "failed_checks": sum(not c["ok"] for e in entries for c in e["checks"])},
            "artifacts": entries}


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


class _Silent(PlainProgress):
    def start(self, total: int, label: str) -> None:
        pass

    def advance(self, status: str, name: str, seconds: float, detail: str = "") -> None:
        pass

