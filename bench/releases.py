"""vkc on older vLLM releases (issue 14): ``collect --all``, the spec example and a compile sample per release.

    python bench/releases.py [--releases 0.33.0,0.32.0,...] [--dir DIR] [--jobs 2] [--force]
                             [--compile-every 10] [--no-compile] [--live] [--table-only]

For each release (default, in this order: 0.33.0, 0.32.0, 0.30.0, 0.25.0, 0.20.0, 0.11.0), one at a time:

1. ``vkc collect --all --jobs N --vllm-version V --out DIR/V/all`` (``HF_HUB_OFFLINE=1``: the default
   models are bundled; model and test tracing on, as a user runs it): wall time, exit status, the
   ``vkc: warning:`` lines, and from ``collect_results.json`` the artifacts by language and invocation
   mode (``bench/invocation_modes.py``'s rules), the failures by error class and the exit code each
   class stands for (70: an internal error, a bug, which must never appear);
2. the spec example ``vkc collect kernel_paged_attention_2d --model openai/gpt-oss-120b --workload
   decode --vllm-version V --out DIR/V/spec``: exit status, its mode, and grid / ``USE_SINKS`` /
   ``SLIDING_WINDOW`` of every configuration in its header (expected: grid (64, 8), sinks, window 128
   on the sliding layers; a release without the kernel says so);
3. ``vkc verify --compile`` on every K-th written artifact (``--compile-every``, sorted by path) plus
   every ``recipe`` artifact: how many compiled, and the failures with their reason.

A release already measured (``DIR/V/measure.json``) is read, not run again (``--force`` reruns it);
``--table-only`` only prints the table from what is there.  The table goes to stdout and
``bench/results/releases.md``, the numbers to ``bench/results/releases.json``.  Every run uses a frozen
copy of ``src/vkc`` (``--live``: the checkout as it is) so that edits made meanwhile do not mix into a
release's numbers.  Prints numbers; not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from invocation_modes import ACCURATE, _mode, summarise

ROOT = Path(__file__).resolve().parent.parent
RELEASES = ("0.33.0", "0.32.0", "0.30.0", "0.25.0", "0.20.0", "0.11.0")
BASE = "0.33.0"
SPEC = ("kernel_paged_attention_2d", "openai/gpt-oss-120b", "decode")
RESULTS_MD = ROOT / "bench" / "results" / "releases.md"
RESULTS_JSON = ROOT / "bench" / "results" / "releases.json"
_WORKER_KINDS = {"WorkerCrashed": "crash", "Timeout": "timeout"}


def _env(code: Path | None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    for k in ("VKC_MODEL_TRACE", "VKC_TEST_TRACE", "VKC_CODE_DIGEST"):
        env.pop(k, None)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def freeze_code(dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(ROOT / "src" / "vkc", dest / "vkc", ignore=shutil.ignore_patterns("__pycache__"))
    got = subprocess.run([sys.executable, "-c", "import vkc; print(vkc.__file__)"], capture_output=True, text=True,
                         env=_env(dest), check=True).stdout.strip()
    assert got.startswith(str(dest)), got
    return dest


def _vkc(args: list[str], env: dict[str, str], timeout: float) -> tuple[int, float, str, str]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-m", "vkc", *args], capture_output=True, text=True, env=env,
                           timeout=timeout, check=False)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = -9, str(exc.stdout or ""), str(exc.stderr or "") + "\n(bench: timed out)"
    return rc, round(time.perf_counter() - t0, 1), out, err


# --------------------------------------------------------------------------- exit codes


def exit_codes() -> dict[str, int]:
    """Error class name -> exit code over vkc's error tree (the pipeline imports the modules defining them)."""
    import vkc.batch.collect_all
    import vkc.pipeline  # noqa: F401
    from vkc.errors import VkcError

    out: dict[str, int] = {}
    todo: list[type] = [VkcError]
    while todo:
        c = todo.pop()
        out[c.__name__] = int(getattr(c, "exit_code", 1))
        todo.extend(c.__subclasses__())
    return out


def code_of(rec: dict[str, Any], codes: dict[str, int]) -> str:
    cls = str(rec.get("error_class") or "")
    if str(rec.get("error") or "").startswith("internal error:"):
        return "70"
    if cls in _WORKER_KINDS:
        return _WORKER_KINDS[cls]
    if cls not in codes and rec.get("status") == "not applicable":
        return f"n/a:{cls}"        # collect --all's own not-applicable classes (RocmOnly): no exit code
    return str(codes.get(cls, f"?{cls}"))


# --------------------------------------------------------------------------- one release


def collect_all(v: str, out: Path, jobs: int, env: dict[str, str], codes: dict[str, int],
                extra: tuple[str, ...] = ()) -> dict[str, Any]:
    if out.exists() and "--resume" not in extra:
        shutil.rmtree(out)
    rc, wall, stdout, stderr = _vkc(["collect", "--all", "--jobs", str(jobs), "--vllm-version", v, "--out", str(out),
                                     *extra], env, timeout=4 * 3600)
    res: dict[str, Any] = {"rc": rc, "wall_s": wall,
                           "wrote_lines": sum(ln.startswith("WROTE ") for ln in stdout.splitlines()),
                           "warnings": [ln for ln in stderr.splitlines() if ln.startswith("vkc: warning:")],
                           "stderr_tail": stderr.splitlines()[-12:]}
    try:
        data = json.loads((out / "collect_results.json").read_text())
    except (OSError, ValueError) as exc:
        res["results"] = {"error": str(exc)}
        return res
    recs = data["kernels"]
    written = [r for r in recs if r["status"] == "written"]
    res["summary"] = data.get("summary")
    res["reach"] = {k: data.get("reach", {}).get(k) for k in ("status", "kernels", "used", "fell_back", "failed")}
    res["modes"] = summarise(written)
    res["codes"] = dict(sorted(Counter(code_of(r, codes) for r in recs if r["status"] != "written").items()))
    res["failed"] = dict(sorted(Counter(f"{r['error_class']}" for r in recs if r["status"] == "failed").items()))
    res["internal"] = [f"{r['name']}: {r['error']}"[:300] for r in recs if code_of(r, codes) == "70"]
    res["failed_examples"] = [f"{r['name']}: {r['error_class']}: {(r['error'] or '')[:200]}"
                              for r in recs if r["status"] == "failed"][:40]
    res["written"] = len(written)
    res["accurate"] = sum(1 for r in written if (r.get("invocation_mode") or _mode(r)) in ACCURATE)
    return res


_GRID = re.compile(r"^# (FULL(?:\.\d+)?) meta: grid=(\([^)]*\))", re.M)
_CONST = re.compile(r"^# (FULL(?:\.\d+)?) constexprs: (.*)$", re.M)
_MODE = re.compile(r"^# invocation: (\S+)", re.M)
_PROGRESS = re.compile(r"^vkc: \[\s*\d+/\d+\] (\S+)\s+(\S+\.json)", re.M)


def spec_example(v: str, out: Path, env: dict[str, str]) -> dict[str, Any]:
    if out.exists():
        shutil.rmtree(out)
    kernel, model, workload = SPEC
    rc, wall, stdout, stderr = _vkc(["collect", kernel, "--model", model, "--workload", workload, "--vllm-version", v,
                                     "--out", str(out)], env, timeout=3600)
    res: dict[str, Any] = {"rc": rc, "wall_s": wall, "stdout": stdout.strip().splitlines()[-3:],
                           "stderr": stderr.strip().splitlines()[-6:]}
    art = out / f"{kernel}.json"
    if rc != 0 or not art.is_file():
        return res
    code = json.loads(art.read_text())["kernel"]["invocation_example"]
    head = code[:20000]
    m = _MODE.search(head)
    res["mode"] = m.group(1) if m else "?"
    consts = {name: dict(kv.split("=", 1) for kv in body.split(", ") if "=" in kv) for name, body in _CONST.findall(head)}
    res["configs"] = [{"config": name, "grid": grid, "sinks": consts.get(name, {}).get("USE_SINKS"),
                       "window": consts.get(name, {}).get("SLIDING_WINDOW"),
                       "num_queries_per_kv": consts.get(name, {}).get("num_queries_per_kv")}
                      for name, grid in _GRID.findall(head)]
    res["correct"] = any(c["grid"] == "(64, 8)" and c["sinks"] == "True" and c["window"] == "128"
                         for c in res["configs"])
    return res


def compile_sample(root: Path, every: int, jobs: int, env: dict[str, str]) -> dict[str, Any]:
    """``vkc verify --compile`` on every ``every``-th written artifact plus every recipe artifact."""
    try:
        data = json.loads((root / "collect_results.json").read_text())
    except (OSError, ValueError) as exc:
        return {"error": str(exc)}
    written = sorted((r for r in data["kernels"] if r["status"] == "written" and r.get("path")),
                     key=lambda r: str(r["path"]))
    paths = {str(Path(r["path"]).resolve()): r for i, r in enumerate(written)
             if i % every == 0 or r.get("invocation_mode") == "recipe"}
    if not paths:
        return {"n": 0}
    results = root.parent / "verify_sample.json"
    rc, wall, _out, err = _vkc(["verify", "--compile", "--jobs", str(jobs), "--results", str(results),
                                *sorted(paths)], env, timeout=3 * 3600)
    n_recipe = sum(1 for r in paths.values() if r.get("invocation_mode") == "recipe")
    return _read_sample(results, paths, {"rc": rc, "wall_s": wall, "n": len(paths), "recipe": n_recipe}, err)


def _read_sample(results: Path, paths: dict[str, dict[str, Any]], res: dict[str, Any], err: str) -> dict[str, Any]:
    try:
        arts = json.loads(results.read_text())["artifacts"]
    except (OSError, ValueError, KeyError) as exc:   # cut short: the progress lines say what finished
        seen = _PROGRESS.findall(err)
        # verify writes its results file only once every artifact is done: a run cut short (rc < 0: a signal
        # from outside vkc, which exits 143 on a SIGTERM it handles) leaves none; say which signal and how far
        why = f"killed by {signal.Signals(-res['rc']).name}" if isinstance(res.get("rc"), int) and res["rc"] < 0 \
            else f"rc {res.get('rc')}"
        res["error"] = f"{type(exc).__name__}: no results file ({why}); {len(seen)} of {res.get('n')} finished"
        res["ok"] = sum(1 for st, _ in seen if st == "ok")
        res["finished"] = len(seen)
        res["failures"] = [f"{Path(p).name}: {st}" for st, p in seen if st != "ok"]
        return res
    fails = []
    by_lang: Counter[str] = Counter()
    ok_lang: Counter[str] = Counter()
    for a in arts:
        art = Path(a["artifact"])
        rec = paths.get(str((art if art.is_absolute() else results.parent / art).resolve()), {})
        lang = f"{rec.get('lang', '?')}:{'recipe' if rec.get('invocation_mode') == 'recipe' else 'sample'}"
        by_lang[lang] += 1
        if a["ok"]:
            ok_lang[lang] += 1
        else:
            bad = next((c for c in a["checks"] if not c["ok"]), {})
            fails.append(f"{Path(a['artifact']).name}: {bad.get('check')}: {' '.join(str(bad.get('reason')).split())[:200]}")
    res.update(ok=sum(ok_lang.values()), by_kind={k: f"{ok_lang[k]}/{n}" for k, n in sorted(by_lang.items())},
               failures=fails)
    return res


def measure(v: str, d: Path, a: argparse.Namespace, env: dict[str, str], codes: dict[str, int]) -> dict[str, Any]:
    d.mkdir(parents=True, exist_ok=True)
    print(f"[{v}] collect --all ...", file=sys.stderr, flush=True)
    res: dict[str, Any] = {"release": v, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "loadavg_start": list(os.getloadavg())}
    extra = (("--no-reach",) if a.no_reach else ()) + (("--resume",) if a.resume else ())
    res["collect_all"] = collect_all(v, d / "all", a.jobs, env, codes, extra)
    res["collect_all"]["args"] = list(extra) + (["VKC_TEST_TRACE=0"] if env.get("VKC_TEST_TRACE") == "0" else [])
    print(f"[{v}] spec example ...", file=sys.stderr, flush=True)
    res["spec"] = spec_example(v, d / "spec", env)
    if not a.no_compile:
        print(f"[{v}] compile sample ...", file=sys.stderr, flush=True)
        res["compile"] = compile_sample(d / "all", a.compile_every, a.jobs, env)
    (d / "measure.json").write_text(json.dumps(res, indent=1, sort_keys=True))
    return res


# --------------------------------------------------------------------------- the table


def _modes(m: dict[str, Any], lang: str) -> str:
    d = m.get("modes", {}).get(lang)
    return ", ".join(f"{k} {n}" for k, n in d["by_mode"].items()) if d else "-"


def _spec_cell(s: dict[str, Any]) -> str:
    if not s:
        return "-"
    if s.get("rc") != 0:
        return f"exit {s.get('rc')}: {' '.join(s.get('stderr', [''])[-1:])[:160]}"
    cfgs = "; ".join(f"{c['config']} grid {c['grid']} sinks={c['sinks']} window={c['window']}" for c in s["configs"])
    return f"{s.get('mode')}: {cfgs}{'' if s.get('correct') else ' **(not the expected launch)**'}"


def _pins(v: str, m: dict[str, Any] | None = None) -> str:
    """The release's pins, read from its tree in the vkc cache; else what the measurement recorded."""
    from vkc.source import cache_dir
    from vkc.source.pins import release_pins

    root = Path(cache_dir()) / f"vllm-{v}" / "src"
    if root.is_dir():
        return release_pins(root).describe()
    return str((m or {}).get("pins") or "tree not in the cache")


def table(res: dict[str, dict[str, Any]]) -> str:
    base = res.get(BASE, {}).get("collect_all", {})
    base_share = base.get("accurate", 0) / base["written"] if base.get("written") else None
    rows = [("| release | collect --all (rc, wall) | Triton by mode | CUDA by mode | exit codes seen "
             "(failed / not applicable) | model-accurate | ratio to 0.33.0 | spec example | compile sample |"),
            "|---|---|---|---|---|---|---|---|---|"]
    for v in [r for r in RELEASES if r in res] + sorted(set(res) - set(RELEASES)):
        c, s, k = res[v].get("collect_all", {}), res[v].get("spec", {}), res[v].get("compile", {})
        share = c.get("accurate", 0) / c["written"] if c.get("written") else 0.0
        ratio = f"{share / base_share:.0%}" if base_share else "-"
        codes = ", ".join(f"{code} x{n}" for code, n in c.get("codes", {}).items()) or "none"
        comp = (f"{k.get('ok')}/{k.get('n')} ({', '.join(f'{a} {b}' for a, b in k.get('by_kind', {}).items())})"
                if k.get("by_kind") else
                f"{k.get('ok')}/{k.get('finished')} of {k.get('n')} finished (cut short: {k.get('error')})"
                if k.get("finished") is not None
                else str(k.get("error", "not run"))[:120])
        args = " ".join(c.get("args", []))
        rows.append(f"| {v} | {c.get('rc')}, {c.get('wall_s')} s{' ' + args if args else ''} | {_modes(c, 'triton')} | {_modes(c, 'cuda')} | "
                    f"{codes} | {c.get('accurate')}/{c.get('written')} ({share:.1%}) | {ratio} | {_spec_cell(s)} | "
                    f"{comp} |")
    notes = ["", "Failures per release (error class: count), warnings, internal errors (exit 70), compile failures:", ""]
    for v in [r for r in RELEASES if r in res]:
        c, k = res[v].get("collect_all", {}), res[v].get("compile", {})
        res[v]["pins"] = _pins(v, res[v])
        notes.append(f"* **{v}** (pins {res[v]['pins']}): failed {c.get('failed')}; "
                     f"{len(c.get('warnings', []))} warning lines; "
                     f"reach map {c.get('reach')}; exit-70 records: {c.get('internal') or 'none'}")
        for f in k.get("failures", [])[:12]:
            notes.append(f"  * compile: {f}")
    return "\n".join(rows + notes) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--releases", default=",".join(RELEASES))
    ap.add_argument("--dir", type=Path, default=Path("/tmp/vkc-releases"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--compile-every", type=int, default=10)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--no-test-trace", action="store_true",
                    help="VKC_TEST_TRACE=0 for every command (no test-traced source; the table says so)")
    ap.add_argument("--no-reach", action="store_true",
                    help="collect --all --no-reach (no reach map: one default model; the table says so)")
    ap.add_argument("--force", action="store_true", help="measure releases again even when measured")
    ap.add_argument("--live", action="store_true", help="use the checkout's src/vkc, not a frozen copy")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("--resume", action="store_true",
                    help="collect --all --resume into a release's folder left by an interrupted run")
    ap.add_argument("--compile-only", action="store_true",
                    help="only the compile sample, for releases measured with --no-compile")
    a = ap.parse_args(argv)
    wanted = [v.strip() for v in a.releases.split(",") if v.strip()]
    a.dir.mkdir(parents=True, exist_ok=True)
    res: dict[str, dict[str, Any]] = {}
    for v in RELEASES + tuple(wanted):
        f = a.dir / v / "measure.json"
        if f.is_file():
            res[v] = json.loads(f.read_text())
    try:        # rows measured earlier (maybe in another --dir, or on a machine whose /tmp is gone) are kept
        for v, m in json.loads(RESULTS_JSON.read_text()).items():
            res.setdefault(v, m)
    except (OSError, ValueError):
        pass
    if not a.table_only:
        code = None if a.live else freeze_code(a.dir / "code")
        env = _env(code)
        if a.no_test_trace:
            env["VKC_TEST_TRACE"] = "0"
        codes = exit_codes()
        for v in wanted:
            if a.compile_only and v in res:
                res[v]["compile"] = compile_sample(a.dir / v / "all", a.compile_every, a.jobs, env)
                (a.dir / v / "measure.json").write_text(json.dumps(res[v], indent=1, sort_keys=True))
                continue
            if v in res and (a.dir / v / "measure.json").is_file() and not a.force:
                print(f"[{v}] measured already ({a.dir / v / 'measure.json'}); --force to rerun", file=sys.stderr)
                continue
            res[v] = measure(v, a.dir / v, a, env, codes)
    codes_map = exit_codes()
    for v, m in res.items():      # exit codes recounted from the records (the mapping may have been refined)
        f = a.dir / v / "all" / "collect_results.json"
        if f.is_file() and "collect_all" in m:
            recs = json.loads(f.read_text())["kernels"]
            m["collect_all"]["codes"] = dict(sorted(Counter(code_of(r, codes_map) for r in recs
                                                            if r["status"] != "written").items()))
        sample = a.dir / v / "verify_sample.json"
        if sample.is_file() and f.is_file() and m.get("compile", {}).get("by_kind"):   # recount per kind
            recs = {str(Path(r["path"]).resolve()): r for r in json.loads(f.read_text())["kernels"] if r.get("path")}
            keep = {k: m["compile"][k] for k in ("rc", "wall_s", "n", "recipe") if k in m["compile"]}
            m["compile"] = _read_sample(sample, recs, keep, "")
    text = table(res)
    print(text)
    RESULTS_MD.write_text("# vkc on vLLM releases (bench/releases.py)\n\n" + text)
    RESULTS_JSON.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
