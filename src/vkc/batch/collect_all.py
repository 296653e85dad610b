"""``vkc collect --all``: every entry kernel (x model x workload) in parallel worker processes.

The parent resolves the source and builds (or loads) the index once, so its cache file
exists; each worker (``spawn``, see :mod:`vkc.batch.pool`) loads that cached index once
and keeps it, and memoises model configs, then runs :func:`vkc.pipeline.collect` per
kernel.  Each artifact has exactly one writer in a run, and
:func:`vkc.write.write_artifact`'s per-file lock serialises writers across runs, so two
concurrent ``--all`` runs into one folder leave every file whole.

Per kernel the outcome is ``written``, ``not applicable`` (NotApplicableError: the kernel
does not apply to the model; or a kernel not built for CUDA, class ``RocmOnly``: a ROCm-only
kernel or one of a module vLLM imports only on ROCm/XPU/CPU, its ``platform_note`` in the
error; never dispatched; neither is a failure) or ``failed`` (any other error, a crashed worker, a
timeout).  Output: one ``WROTE`` line per artifact on stdout (as they finish),
progress and a summary on stderr, and ``<out>/collect_results.json``::

    {"vkc": ..., "vllm": ..., "jobs": N, "seconds": ..., "layout": "flat" | "nested",
     "summary": {"total", "written", "not_applicable", "failed",
                 "by_class": {"failed": {cls: n}, "not_applicable": {cls: n}}},
     "kernels": [{"name", "qualified", "lang", "model", "workload", "status",
                  "error_class", "error", "seconds", "path", "invocation_mode", "invocation_source",
                  "model_accurate", "reach", "reach_fallback", "test_model", "test_model_fallback",
                  "reference_source"}, ...],
     "reach": {"status", "kernels", "used", "fell_back", "key", "cached", "failed", "order"}}

Without ``--model`` (and unless ``--no-reach`` or ``VKC_MODEL_TRACE=0``), each kernel in the reach map
(:mod:`vkc.batch.reach`: the first bundled model x workload whose step launches it) is collected at
that model and workload (record ``reach``: ``"<model> <workload>"``); if that fails, one warning line
and the kernel is collected as without the map (``reach_fallback``: why).  The stderr summary has a
``reach map:`` line saying how many kernels took their model from it.  Under the same condition
each kernel only vLLM's tests reach whose tests' size parameters a bundled model maps better than the
default model (:mod:`vkc.batch.testsize`) is collected at that model (record ``test_model``; on failure
``test_model_fallback``, likewise); the summary's ``test-size map:`` line counts them.
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

import vkc
from vkc.batch.jsonio import write_json_atomic
from vkc.batch.plan import INFERRED, Job, plan_jobs
from vkc.batch.pool import Outcome, imap_isolated
from vkc.batch.prefetch import prefetch_test_captures
from vkc.batch.progress import PlainProgress
from vkc.batch.resume import RECORD_FACTS, Journal, job_key, model_digest
from vkc.errors import UsageError
from vkc.records import KernelIndex

RESULTS_FILE = "collect_results.json"
WRITTEN, NOT_APPLICABLE, FAILED = "written", "not applicable", "failed"
ROCM_ONLY = {"status": NOT_APPLICABLE, "error_class": "RocmOnly",
             "error": "ROCm-only kernel: vkc collects kernels for NVIDIA GPUs (not dispatched)"}


@dataclass
class BatchReport:
    """The outcome of a ``--all`` run (``records`` in plan order)."""
    records: list[dict[str, Any]]
    seconds: float
    results_path: str
    jobs: int
    summary: dict[str, Any] = field(default_factory=dict)
    reach: dict[str, Any] | None = None   # the reach map's use (None: an explicit --model / --all-used run)

    @property
    def failed(self) -> int:
        return self.summary.get("failed", 0)


# --------------------------------------------------------------------------- worker side


def quiet_stdout() -> None:
    """Point this process's stdout (fd 1 and ``sys.stdout``) at its stderr."""
    import sys

    try:
        sys.stdout.flush()
        os.dup2(2, 1)
    except OSError:
        return
    sys.stdout = sys.stderr


def _init_worker(vllm_path: str | None, vllm_version: str | None) -> dict[str, Any]:
    """Load the cached index once per worker (model configs: ``load_model_cached``)."""
    from vkc import pipeline

    # stdout carries the parent's WROTE lines only: whatever a worker (or a compiler it runs
    # in-process) prints, at the Python or the C level, goes to stderr.  The generic invoker's
    # Triton probe runs in its own interpreter with its output captured (in this worker it
    # printed Triton IR to stdout and crashed the worker on _joint_prepare).
    quiet_stdout()
    os.environ.pop("VKC_PROBE_INPROCESS", None)
    index = pipeline.load_index(vllm_path, vllm_version)  # a cache hit: the parent built it
    return {"vllm_path": vllm_path, "vllm_version": vllm_version, "index": index}


def _model_cfg(model: str | None) -> Any:
    from vkc.modelcfg import DEFAULT_MODEL, load_model_cached

    return load_model_cached(model or DEFAULT_MODEL)


def _run_job(state: dict[str, Any], job: Job) -> dict[str, Any]:
    """Collect one kernel (a reach-map job that fails: its fallback, with one warning line)."""
    got = _collect_one(state, job)
    if job.fallback is None:
        return got
    if got["status"] == WRITTEN:
        return dict(got, reach=job.reach or None, test_model=job.test_model or None)
    why = " ".join(f"{got['error_class']}: {got['error']}".split())[:300]
    where, which = (f"{job.reach} (reach map)", "reach_fallback") if job.reach else \
        (f"{job.test_model} (test-size map)", "test_model_fallback")
    print(f"vkc: warning: {job.name}: collecting at {where} failed ({why}); "
          "collecting as without the map", file=sys.stderr, flush=True)
    from vkc.modelcfg import DEFAULT_MODEL

    res = _collect_one(state, job.fallback)
    return dict(res, **{which: f"{job.reach or job.test_model}: {why}"}, workload=job.fallback.workload,
                model=res.get("model") or DEFAULT_MODEL)


def _collect_one(state: dict[str, Any], job: Job) -> dict[str, Any]:
    """Collect one kernel; never raises for vkc errors (they are the record)."""
    from vkc.errors import NotApplicableError, VkcError
    from vkc.pipeline import collect

    try:
        res = collect(job.name, model=job.model, workload=job.workload, out_dir=job.out_dir,
                      vllm_path=state["vllm_path"], vllm_version=state["vllm_version"], command=job.command,
                      index=state["index"], model_cfg=_model_cfg(job.model))
    except NotApplicableError as exc:
        return {"status": NOT_APPLICABLE, "error_class": type(exc).__name__, "error": str(exc)}
    except VkcError as exc:
        return {"status": FAILED, "error_class": type(exc).__name__, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001  (an internal bug in one kernel must not stop the batch)
        first = " ".join(str(exc).split())[:400]
        return {"status": FAILED, "error_class": type(exc).__name__, "error": f"internal error: {first}"}
    return {"status": WRITTEN, "path": res.path, "line": res.line, "model": res.model_id or None,
            "invocation_mode": res.invocation_mode or None, "invocation_source": res.invocation_source or None,
            "model_accurate": res.model_accurate, "reference_source": res.reference_source or None}


# --------------------------------------------------------------------------- parent side


def _schedule(jobs: list[Job]) -> list[Job]:
    """Slow kernels first (Triton kernels with a recipe start a trace subprocess), then plan order."""
    try:
        from vkc.invoke.triton.recipes import get_recipe
    except Exception:  # noqa: BLE001  (only an ordering hint)
        return list(jobs)

    def slow(j: Job) -> bool:
        try:
            return j.lang == "triton" and get_recipe(j.qualified) is not None
        except Exception:  # noqa: BLE001
            return False
    return sorted(jobs, key=lambda j: (not slow(j), j.order))


def _record(job: Job, out: Outcome, default_model: str) -> dict[str, Any]:
    value = out.value if isinstance(out.value, dict) else {}
    if out.error is not None:  # the worker crashed or timed out, or _run_job itself failed
        value = {"status": FAILED, "error_class": out.kind, "error": out.error}
    return {
        "name": job.name, "qualified": job.qualified, "lang": job.lang,
        "model": value.get("model") or job.model or default_model, "workload": value.get("workload", job.workload),
        "status": value.get("status", FAILED), "error_class": value.get("error_class"),
        "error": value.get("error"), "seconds": round(out.seconds, 3), "path": value.get("path"),
        "line": value.get("line"), "invocation_mode": value.get("invocation_mode"),
        "invocation_source": value.get("invocation_source"), "model_accurate": value.get("model_accurate"),
        "reach": value.get("reach"), "reach_fallback": value.get("reach_fallback"),
        "test_model": value.get("test_model"), "test_model_fallback": value.get("test_model_fallback"),
        "reference_source": value.get("reference_source"),
    }


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status, and by error class for failed / not applicable."""
    status = Counter(r["status"] for r in records)
    by_class: dict[str, dict[str, int]] = {}
    for key, st in (("failed", FAILED), ("not_applicable", NOT_APPLICABLE)):
        c = Counter(r["error_class"] or "?" for r in records if r["status"] == st)
        by_class[key] = dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))
    modes = Counter(f"{r.get('lang') or '?'}:{r.get('invocation_mode') or '?'}" for r in records if r["status"] == WRITTEN)
    return {"total": len(records), "written": status[WRITTEN], "not_applicable": status[NOT_APPLICABLE],
            "failed": status[FAILED], "by_class": by_class, "by_invocation_mode": dict(sorted(modes.items())),
            "reach_used": sum(1 for r in records if r.get("reach")),
            "reach_fell_back": sum(1 for r in records if r.get("reach_fallback")),
            "test_model_used": sum(1 for r in records if r.get("test_model")),
            "test_model_fell_back": sum(1 for r in records if r.get("test_model_fallback"))}


def format_summary(report: BatchReport) -> str:
    """The stderr summary: totals, then failures / not-applicable by exception class."""
    s = report.summary
    head = (f"vkc: collected {s['total']} kernel runs in {report.seconds:.1f} s with {report.jobs} "
            f"worker(s): {s['written']} written, {s['not_applicable']} not applicable, {s['failed']} failed")
    lines = [head]
    if s.get("by_invocation_mode"):
        lines.append("vkc:   invocation: " + ", ".join(f"{k} {v}" for k, v in s["by_invocation_mode"].items()))
    if report.reach is not None:
        lines.append(f"vkc:   {reach_line(report.reach)}")
    if s.get("test_model_used") or s.get("test_model_fell_back"):
        fell = f"; {s['test_model_fell_back']} fell back" if s.get("test_model_fell_back") else ""
        lines.append(f"vkc:   test-size map: {s['test_model_used']} kernels took their model from their "
                     f"tests' size parameters{fell}")
    for key, label in (("failed", "failed"), ("not_applicable", "not applicable")):
        if s["by_class"][key]:
            lines.append(f"vkc:   {label}: " + ", ".join(f"{k} {v}" for k, v in s["by_class"][key].items()))
    if s["failed"]:
        examples = [r for r in report.records if r["status"] == FAILED][:5]
        for r in examples:
            lines.append(f"vkc:     {r['name']}: {r['error_class']}: {(r['error'] or '')[:200]}")
        if s["failed"] > len(examples):
            lines.append(f"vkc:     ... {s['failed'] - len(examples)} more")
    lines.append(f"vkc: results in {report.results_path}")
    return "\n".join(lines) + "\n"


def _used(index: Any, models: list[str] | None, workloads: list[str] | None,
          default_model: str) -> dict[str | None, set[str]]:
    """--all-used: one model's traced step decides the kernels (traced once, here, for the workers)."""
    from vkc.batch.used import used_kernels

    return used_kernels(index, (models or [default_model])[0], workloads or [None])


def collect_all(*, lang: str | None = None, models: list[str] | None = None,
                workloads: list[str] | None = None, jobs: int | None = None,
                out_dir: str = "kernels_out", vllm_path: str | None = None,
                vllm_version: str | None = None, progress: PlainProgress | None = None,
                stdout: TextIO | None = None, task_timeout: float | None = None,
                resume: bool = False, all_used: bool = False, reach: bool = True) -> BatchReport:
    """Collect every entry kernel; WROTE lines go to ``stdout`` as artifacts are written.

    ``all_used`` (one model) collects only the tree kernels the model's traced step launches
    (:mod:`vkc.batch.used`).  ``reach`` (no ``models``, not ``all_used``): size each kernel in the reach
    map at its model and workload (:mod:`vkc.batch.reach`; off with False or ``VKC_MODEL_TRACE=0``).
    ``resume`` skips the jobs whose artifact is already in ``out_dir`` for the same inputs
    (:mod:`vkc.batch.resume`; they count as written, with no WROTE line).

    Raises VkcError only for problems that stop the whole batch (bad arguments, unreadable
    source, unknown model, unwritable output folder); per-kernel errors are records.
    """
    from vkc.modelcfg import DEFAULT_MODEL, load_model
    from vkc.pipeline import load_index
    from vkc.write import prepare_out_dir

    t0 = time.perf_counter()
    stdout = stdout or sys.stdout
    n_workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if n_workers < 1:
        raise UsageError(f"--jobs must be at least 1, not {n_workers}", hint="e.g. --jobs 2")
    out_dir = os.fspath(out_dir)
    prepare_out_dir(out_dir)
    index = load_index(vllm_path, vllm_version)      # builds and caches it for the workers
    for m in dict.fromkeys(models or []):
        load_model(m)                                 # an unknown model fails now, once
    only = _used(index, models, workloads, DEFAULT_MODEL) if all_used else None
    rmap, reach_info = (None, None) if (models or workloads or all_used) else _reach(index, reach, n_workers)
    pairs = rmap.pairs() if rmap is not None else None
    tmap = None if (models or workloads or all_used or not reach) else _test_sizes(index, pairs)
    if not all_used:
        prefetch_test_captures(index, models or [DEFAULT_MODEL], n_workers, lang, tmap, workloads)
    plan = plan_jobs(index, lang=lang, models=models, workloads=workloads, out_dir=out_dir,
                     vllm_path=vllm_path, vllm_version=vllm_version, default_model=DEFAULT_MODEL, only=only,
                     reach=pairs, test_models=tmap)
    records: list[dict[str, Any] | None] = [None] * len(plan)
    progress = progress or PlainProgress()
    what = f"collecting {len(plan)} kernel runs ({_describe(models, workloads, DEFAULT_MODEL)})"
    rocm = {k.qualified: k.platform_note for k in index.kernels if k.rocm_only}
    journal = Journal(out_dir, resume=resume)
    keys = _job_keys(plan, index, DEFAULT_MODEL)
    skipped = {j.order: e for j in plan if j.qualified not in rocm and (e := journal.skip(keys[j.order]))}
    order = _schedule([j for j in plan if j.qualified not in rocm and j.order not in skipped])
    flat = len({j.name for j in plan}) == len(plan)
    progress.start(len(plan), what)
    try:
        for job in plan:  # never dispatched: vkc targets CUDA GPUs (the extractor refuses them)
            if job.qualified in rocm:
                value = ROCM_ONLY if not rocm[job.qualified] else {
                    **ROCM_ONLY, "error": f"{ROCM_ONLY['error']}; {rocm[job.qualified]}"}
                records[job.order] = rec = _record(job, Outcome(value=value), DEFAULT_MODEL)
                progress.advance(rec["status"], job.name, 0.0, f"{rec['error_class']}: {rec['error']}")
        for job in plan:
            if job.order in skipped:
                e = skipped[job.order]
                kept = {k: e[k] for k in RECORD_FACTS if k in e}
                records[job.order] = rec = _record(job, Outcome(value={**kept, "status": WRITTEN, "path": e["path"],
                                                                       "model": e.get("model")}), DEFAULT_MODEL)
                progress.advance(rec["status"], job.name, 0.0, "already written (--resume)")
        for i, out in imap_isolated(order, _run_job, workers=n_workers, init=_init_worker,
                                    init_args=(vllm_path, vllm_version), task_timeout=task_timeout):
            job = order[i]
            rec = _record(job, out, DEFAULT_MODEL)
            records[job.order] = rec
            if rec["status"] == WRITTEN and rec["line"]:
                journal.add(keys[job.order], rec["path"], rec["model"], rec)
                print(rec["line"], file=stdout, flush=True)
            detail = "" if rec["status"] == WRITTEN else f"{rec['error_class']}: {rec['error']}"
            label = job.name if flat else f"{job.name} [{rec['model']}, {job.workload or INFERRED}]"
            progress.advance(rec["status"], label, out.seconds, detail[:300])
    finally:
        progress.stop()
    journal.finish()
    nested = len(set(models or ())) > 1 or len(set(workloads or ())) > 1
    return _finish(records, plan, reach_info, out_dir=out_dir, t0=t0, jobs=n_workers, index=index, nested=nested)


def _finish(records: list[dict[str, Any] | None], plan: list[Job], reach_info: dict[str, Any] | None, *,
            out_dir: str, t0: float, jobs: int, index: KernelIndex, nested: bool) -> BatchReport:
    """The report, and ``<out>/collect_results.json``."""
    done = [r for r in records if r is not None]
    for r in done:
        r.pop("line", None)
    results_path = os.path.join(out_dir, RESULTS_FILE).replace(os.sep, "/")
    report = BatchReport(records=done, seconds=time.perf_counter() - t0, results_path=results_path,
                         jobs=jobs, summary=summarise(done))
    if reach_info is not None:
        report.reach = dict(reach_info, planned=sum(1 for j in plan if j.reach), used=report.summary["reach_used"],
                            fell_back=report.summary["reach_fell_back"])
    write_json_atomic(results_path, {
        "vkc": vkc.__version__, "vllm": index.tree.label, "jobs": jobs,
        "seconds": round(report.seconds, 3), "layout": "nested" if nested else "flat",
        "summary": report.summary, "kernels": done, **({"reach": report.reach} if report.reach is not None else {})})
    return report


def _test_sizes(index: KernelIndex, pairs: dict[str, tuple[str, str]] | None) -> dict[str, str]:
    """The test-size map (:mod:`vkc.batch.testsize`) for the kernels the reach map does not size."""
    from vkc.batch.testsize import model_map_from_tests

    return model_map_from_tests(index, skip=pairs or ())


def _reach(index: KernelIndex, wanted: bool, workers: int) -> tuple[Any, dict[str, Any]]:
    """The reach map (or None) and what the results say about it (``status``: on / off and why)."""
    from vkc.invoke.triton.modeltraced.session import model_trace_enabled

    if not wanted:
        return None, {"status": "off (--no-reach)"}
    if not model_trace_enabled():
        return None, {"status": "off (VKC_MODEL_TRACE=0)"}
    from vkc.batch.reach import reach_map

    rm = reach_map(index, jobs=workers)
    return rm, {"status": "on", "kernels": len(rm.kernels), "key": rm.key, "cached": rm.cached,
                "failed": [list(f) for f in rm.failed], "order": [list(p) for p in rm.order],
                "describe": rm.describe()}


def reach_line(info: dict[str, Any]) -> str:
    """The summary's ``reach map:`` line."""
    if info.get("status") != "on":
        return f"reach map: {info.get('status')}; every kernel sized as without it"
    fell = f"; {info['fell_back']} fell back to the default model" if info.get("fell_back") else ""
    return (f"reach map: {info.get('used', 0)} kernels took their model and workload from it "
            f"({info.get('describe', '')}){fell}")


def _job_keys(plan: list[Job], index: Any, default_model: str) -> dict[int, str]:
    """Each job's content key (:func:`vkc.batch.resume.job_key`)."""
    from vkc.index.cache import cache_key
    from vkc.modelcfg import DEFAULT_MODELS

    tree_key = cache_key(index.tree)
    models: dict[str | None, str] = {}
    keys = {}
    for job in plan:
        if job.model not in models:  # no --model: sized for the first default model that applies
            models[job.model] = model_digest([job.model] if job.model else list(DEFAULT_MODELS))
        keys[job.order] = job_key(job, tree_key, models[job.model])
    return keys


def _describe(models, workloads, default_model: str) -> str:
    ms = ", ".join(dict.fromkeys(models or [])) or default_model
    ws = ", ".join(dict.fromkeys(workloads or [])) or "inferred workload"
    return f"{ms}; {ws}"
