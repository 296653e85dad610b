"""Full-artifact coverage over every Triton entry kernel of the vLLM tree (issues 3 and 5).

For each entry kernel of ``vkc.index.build_index`` (no model given -> the default model):
extract, invoke, write ``<out>/artifacts/<qualified stem>.json``, then ``vkc verify``'s
static rubric and the sm_90 compile check (``vkc.verify.triton_compile.compile_artifact``,
CPU only).  Work runs in worker subprocesses (``--jobs``, default 2) over small batches; one
status file per kernel (``<out>/status/<stem>.json``) makes re-runs incremental: kernels
already done are skipped unless ``--force`` (or ``--redo-failed``).  The summary counts
entries, extracted, full artifacts written (traced / generic / other), rubric OK, compile OK,
and failures grouped by reason, with total and per-kernel times.

    python bench/triton_tree_coverage.py [--out /tmp/vkc-tree-cov] [--jobs 2] [--match SUBSTR]
        [--limit N] [--every K] [--force | --redo-failed] [--show N] [--summary-only]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

KERNEL_TIMEOUT_S = 180
BATCH = 8


def _stem(qualified: str) -> str:
    return qualified.replace(":", "--").replace("/", ".")


def _entries():
    from vkc.index import build_index
    from vkc.source import resolve_source

    tree = resolve_source()
    idx = build_index(tree)
    ks = [k for k in idx.kernels if k.lang == "triton" and k.role == "entry"]
    return tree, sorted(ks, key=lambda k: k.qualified)


# --------------------------------------------------------------------------- worker


class _Timeout(Exception):
    pass


def _alarm(_sig, _frm):
    raise _Timeout(f"timed out after {KERNEL_TIMEOUT_S}s")


def _one(tree, kernel, model, out: Path) -> dict:
    from vkc.errors import VkcError
    from vkc.extract import extract
    from vkc.invoke import invoke
    from vkc.verify.rubric import check_artifact
    from vkc.verify.triton_compile import compile_artifact
    from vkc.write import write_artifact
    from vkc.write.schema import loads_artifact

    rec: dict = {"qualified": kernel.qualified, "ok": False}
    stage = "extract"
    t0 = time.time()
    try:
        ex = extract(tree, kernel, name=kernel.qualified)
        rec["t_extract"] = round(time.time() - t0, 3)
        stage = "invoke"
        t1 = time.time()
        inv = invoke(tree, ex, model, None, command=f"vkc collect {kernel.qualified}", name=kernel.qualified,
                     model_given=False)
        rec["t_invoke"] = round(time.time() - t1, 3)
        rec["traced"] = bool(inv.facts.get("traced"))
        rec["generic"] = bool(inv.facts.get("generic"))
        stage = "write"
        res = write_artifact(kernel.qualified, ex.kernel_type, ex.source_code, inv.code, out / "artifacts")
        rec["written"] = True
        stage = "rubric"
        bad = [f"{r.check}: {r.reason}" for r in check_artifact(res.path) if not r.ok]
        rec["rubric_ok"] = not bad
        if bad:
            rec["rubric"] = bad
        stage = "compile"
        t2 = time.time()
        art = loads_artifact(Path(res.path).read_bytes())
        cr = compile_artifact(res.path, art)[0]
        rec["t_compile"] = round(time.time() - t2, 3)
        rec["compile_ok"] = cr.ok
        if not cr.ok:
            rec["detail"] = _compile_detail(art) or ""
            raise RuntimeError(cr.reason)
        rec["ok"] = not bad
        if bad:
            stage = "rubric"
            rec["reason"] = bad[0]
    except _Timeout as e:
        rec["reason"] = str(e)
    except VkcError as e:
        rec["reason"] = f"{type(e).__name__}: {e.message}"
    except Exception as e:  # noqa: BLE001  (a bug or a compile failure: record, continue)
        rec["reason"] = " ".join(str(e).split())[:600] if stage == "compile" else f"{type(e).__name__}: {e}"[:600]
    rec["stage"] = "done" if rec["ok"] else stage
    rec["t_total"] = round(time.time() - t0, 3)
    return rec


def _compile_detail(art: dict) -> str | None:
    """The compiler's own message (the part after the source excerpt), which the check truncates."""
    import tempfile

    import triton
    from triton.backends.compiler import GPUTarget

    from vkc.toolchain.triton import load_entry, make_ast_source
    from vkc.verify.triton_compile import read_literal

    code = art["kernel"]["invocation_example"]
    spec = read_literal(code, "VKC_COMPILE")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / (read_literal(code, "KERNEL_FILE") or "k.py")
        src.write_text(art["kernel"]["source_code"])
        try:
            fn = load_entry(src, spec["entry"])
            ast_src = make_ast_source(fn, spec["signature"], spec["constexprs"], spec.get("attrs", {}))
            triton.compile(ast_src, target=GPUTarget("cuda", 90, 32),
                           options={"num_warps": spec["num_warps"], "num_stages": spec["num_stages"]})
        except Exception as e:  # noqa: BLE001
            return _gist(e)[:300]
    return None


def _gist(e: BaseException, depth: int = 0) -> str:
    """The innermost meaningful compiler message (CompilationError nests the real one)."""
    text = str(e)
    m = re.search(r"error: ([^\n]*)", text[:4000])
    if m and "error encountered during parsing" not in m.group(1):
        return f"{type(e).__name__}: {m.group(1)}"
    lines = text.strip().splitlines()
    carets = [i for i, ln in enumerate(lines) if ln.strip() == "^"]
    tail = " ".join(x.strip() for x in lines[carets[-1] + 1:]) if carets else (lines[-1] if lines else "")
    if carets and not tail.strip() or re.fullmatch(r"(CompilationError: )?at \d+:\d+:", tail.strip()):
        cause = e.__cause__ or e.__context__
        if cause is not None and depth < 8:
            return _gist(cause, depth + 1)
    return f"{type(e).__name__}: {tail}"


def worker(out: Path, names: list[str]) -> int:
    from vkc.modelcfg import DEFAULT_MODEL, load_model

    os.environ.setdefault("VKC_PROBE_INPROCESS", "1")   # this worker holds triton already; the watcher isolates
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    tree, ks = _entries()
    by_q = {k.qualified: k for k in ks}
    model = load_model(DEFAULT_MODEL)
    signal.signal(signal.SIGALRM, _alarm)
    for q in names:
        signal.alarm(KERNEL_TIMEOUT_S)
        try:
            rec = _one(tree, by_q[q], model, out)
        except _Timeout as e:
            rec = {"qualified": q, "ok": False, "stage": "timeout", "reason": str(e)}
        finally:
            signal.alarm(0)
        (out / "status" / f"{_stem(q)}.json").write_text(json.dumps(rec, sort_keys=True, indent=1))
    return 0


# --------------------------------------------------------------------------- driver


def _watch(cmd: list[str], out: Path, batch: list[str]) -> list[str]:
    """Run one worker; kill it when no kernel of its batch finishes within KERNEL_TIMEOUT_S + 60 s
    (a compile stuck in native code does not see SIGALRM)."""
    import tempfile

    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - read back after the process ends
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
    last, seen = time.time(), 0
    while proc.poll() is None:
        time.sleep(1.0)
        n = sum(1 for q in batch if (out / "status" / f"{_stem(q)}.json").exists())
        if n != seen:
            last, seen = time.time(), n
        elif time.time() - last > KERNEL_TIMEOUT_S + 60:
            proc.kill()
            proc.wait()
            return [f"killed: no progress for {KERNEL_TIMEOUT_S + 60}s"]
    log.seek(0)
    tail = (log.read() or "").strip().splitlines()[-1:] if proc.returncode else []
    log.close()
    return tail


def _run_batches(out: Path, todo: list[str], jobs: int) -> None:
    queue = [todo[i:i + BATCH] for i in range(0, len(todo), BATCH)]
    lock = threading.Lock()
    done = [0]

    def take():
        with lock:
            return queue.pop(0) if queue else None

    def loop():
        while True:
            batch = take()
            if batch is None:
                return
            cmd = [sys.executable, __file__, "--worker", "--out", str(out), *batch]
            err = _watch(cmd, out, batch)
            missing = [q for q in batch if not (out / "status" / f"{_stem(q)}.json").exists()]
            if missing:  # the worker died on missing[0]: record it, requeue the rest
                rec = {"qualified": missing[0], "ok": False, "stage": "crash",
                       "reason": "worker died: " + (err[0] if err else "no message")[:300]}
                (out / "status" / f"{_stem(missing[0])}.json").write_text(json.dumps(rec, sort_keys=True))
                if missing[1:]:
                    with lock:
                        queue.append(missing[1:])
            with lock:
                done[0] += len(batch) - len(missing[1:])
                print(f"  {done[0]}/{len(todo)}", file=sys.stderr, flush=True)

    threads = [threading.Thread(target=loop) for _ in range(max(1, jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


_MASKS = [
    (re.compile(r"\bat \d+:\d+\b"), "at L:C"),
    (re.compile(r"'[^']*'"), "'…'"),
    (re.compile(r"\b\d+\b"), "N"),
]


def reason_key(rec: dict) -> str:
    """Group label: stage + the error's gist with names and numbers masked."""
    reason = rec.get("detail") or rec.get("reason") or ""
    for pat, rep in _MASKS:
        reason = pat.sub(rep, reason)
    return f"{rec.get('stage')}: {reason[:110]}"


def summarize(out: Path, selected: list[str], show: int) -> None:
    recs = []
    for q in selected:
        p = out / "status" / f"{_stem(q)}.json"
        if p.exists():
            recs.append(json.loads(p.read_text()))
    n = len(selected)
    extracted = sum(1 for r in recs if r.get("stage") != "extract" and "t_extract" in r)
    written = [r for r in recs if r.get("written")]
    traced = sum(1 for r in written if r.get("traced"))
    generic = sum(1 for r in written if r.get("generic"))
    comp_ok = sum(1 for r in recs if r.get("compile_ok"))
    full_ok = sum(1 for r in recs if r.get("ok"))
    rub_ok = sum(1 for r in recs if r.get("rubric_ok"))
    times = [r["t_total"] for r in recs if "t_total" in r]
    print(f"entries selected:      {n} (status present for {len(recs)})")
    print(f"extracted:             {extracted}")
    print(f"full artifact written: {len(written)} (traced {traced}, generic {generic}, "
          f"other untraced {len(written) - traced - generic})")
    print(f"rubric OK:             {rub_ok}")
    print(f"compile OK (sm_90):    {comp_ok}  ({100.0 * comp_ok / max(n, 1):.1f}% of selected)")
    print(f"all checks OK:         {full_ok}  ({100.0 * full_ok / max(n, 1):.1f}% of selected)")
    for label, sel in (("traced", [r for r in written if r.get("traced")]),
                       ("generic", [r for r in written if r.get("generic")])):
        if sel:
            print(f"  compile OK among {label}: {sum(1 for r in sel if r.get('compile_ok'))}/{len(sel)}")
    if times:
        times.sort()
        print(f"time per kernel: total {sum(times):.0f}s (worker time), mean {sum(times) / len(times):.2f}s, "
              f"median {times[len(times) // 2]:.2f}s, max {times[-1]:.1f}s")
    groups = collections.defaultdict(list)
    for r in recs:
        if not r.get("ok"):
            groups[reason_key(r)].append(r)
    if groups:
        print(f"failures: {sum(len(v) for v in groups.values())} in {len(groups)} groups")
        for key, rs in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:show]:
            print(f"  {len(rs):4d}  {key}")
            for r in rs[:3]:
                print(f"        e.g. {r['qualified']}: {(r.get('detail') or r.get('reason') or '')[:200]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="/tmp/vkc-tree-cov")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--match", default="", help="only kernels whose qualified name contains this")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--every", type=int, default=1, help="take every K-th kernel (a spread sample)")
    ap.add_argument("--force", action="store_true", help="redo kernels that have a status already")
    ap.add_argument("--redo-failed", action="store_true", help="redo kernels whose status is a failure")
    ap.add_argument("--show", type=int, default=25, help="failure groups to print")
    ap.add_argument("--summary-only", action="store_true")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("names", nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    out = Path(args.out)
    (out / "status").mkdir(parents=True, exist_ok=True)
    (out / "artifacts").mkdir(parents=True, exist_ok=True)
    if args.worker:
        return worker(out, args.names)
    _tree, ks = _entries()
    selected = [k.qualified for k in ks if args.match in k.qualified][:: max(1, args.every)]
    if args.limit:
        selected = selected[: args.limit]
    todo = []
    for q in selected:
        p = out / "status" / f"{_stem(q)}.json"
        if args.force or not p.exists() or args.redo_failed and not json.loads(p.read_text()).get("ok"):
            todo.append(q)
    t0 = time.time()
    if todo and not args.summary_only:
        print(f"running {len(todo)} of {len(selected)} selected kernels with {args.jobs} workers", file=sys.stderr)
        _run_batches(out, todo, args.jobs)
        wall = time.time() - t0
        print(f"wall time {wall:.0f}s for {len(todo)} kernels ({wall / len(todo):.2f}s each with {args.jobs} workers)")
    summarize(out, selected, args.show)
    return 0


if __name__ == "__main__":
    sys.exit(main())
