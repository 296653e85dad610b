"""How well does ``vkc collect --all --resume`` continue a killed run?  (issue 15, "Recovery")

    python bench/resume_speed.py [--jobs 2] [--kill-after 60] [--no-baseline] [--dir DIR] [--json FILE]

1. unless ``--no-baseline``: an uninterrupted ``vkc collect --all --jobs N --out DIR/out``, its wall
   time; the folder is then renamed ``DIR/base`` (artifacts name their ``--out`` folder in their
   regenerate line, so both runs write to the same path);
2. ``vkc collect --all --jobs N --out DIR/out`` in its own session, SIGKILLed (the whole process
   group) after ``--kill-after`` seconds: WROTE lines seen, journal lines, every ``*.json`` in the
   folder checked to parse (no partial file), and vkc processes of that session still alive 1 s
   and 5 s after the kill (issue 15: workers must die with their parent);
3. ``vkc collect --all --jobs N --resume --out DIR/out``: its wall time, how many artifacts it
   wrote again (WROTE lines; those whose file the killed run had already finished are "redone"),
   and whether ``collect_results.json`` is whole (parses, one record per planned job);
4. with the baseline: a byte comparison of the two folders (every artifact and the journal; lock
   files counted, not compared; ``collect_results.json`` record by record without ``seconds``).

Model and test tracing are off (``VKC_MODEL_TRACE=0 VKC_TEST_TRACE=0``).  All runs use a frozen copy
of vkc's source (``src/vkc`` copied into the work folder, first on ``PYTHONPATH``; ``--live`` uses the
checkout as it is), so that engineers editing this checkout meanwhile change neither the resume keys
nor the artifacts between the runs.  Prints numbers; not a test.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESULTS = "collect_results.json"
JOURNAL = ".vkc-collect-journal.jsonl"


def _env(code: Path | None) -> dict[str, str]:
    env = {**os.environ, "VKC_MODEL_TRACE": "0", "VKC_TEST_TRACE": "0", "PYTHONUNBUFFERED": "1"}
    env.pop("VKC_CODE_DIGEST", None)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def freeze_code(dest: Path) -> Path:
    """A copy of the checkout's ``src/vkc`` under ``dest`` (checked to be the one imported)."""
    src = Path(__file__).resolve().parent.parent / "src" / "vkc"
    shutil.copytree(src, dest / "vkc", ignore=shutil.ignore_patterns("__pycache__"))
    got = subprocess.run([sys.executable, "-c", "import vkc; print(vkc.__file__)"], capture_output=True, text=True,
                         env=_env(dest), check=True).stdout.strip()
    assert got.startswith(str(dest)), got
    return dest


def _cmd(out: Path, jobs: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "vkc", "collect", "--all", "--jobs", str(jobs), "--out", str(out), *extra]


def _session_alive(sid: int) -> int:
    """Processes whose session id is ``sid`` (vkc and its workers)."""
    n = 0
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[3]) == sid:
                n += 1
    return n


def killed_run(out: Path, jobs: int, after: float, env: dict[str, str]) -> dict[str, Any]:
    lines: list[str] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(_cmd(out, jobs), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        proc.wait(timeout=after)
        finished = True
    except subprocess.TimeoutExpired:
        finished = False
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    t_kill = time.perf_counter()
    time.sleep(1.0)
    alive_1s = _session_alive(proc.pid)
    time.sleep(4.0)
    alive_5s = _session_alive(proc.pid)
    reader.join(timeout=5)
    wrote = [ln for ln in lines if ln.startswith("WROTE ")]
    broken = []
    for f in sorted(out.rglob("*.json")):
        try:
            json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            broken.append(str(f.relative_to(out)))
    journal = (out / JOURNAL).read_text(encoding="utf-8").splitlines() if (out / JOURNAL).exists() else []
    return {"finished_before_kill": finished, "killed_after_s": round(t_kill - t0, 1), "wrote_lines": len(wrote),
            "journal_lines": len(journal), "json_files": len(list(out.rglob("*.json"))),
            "partial_json_files": broken, "session_procs_alive_1s": alive_1s, "session_procs_alive_5s": alive_5s,
            "wrote_paths": sorted(ln.split()[1] for ln in wrote)}


def full_run(out: Path, jobs: int, env: dict[str, str], *extra: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    p = subprocess.run(_cmd(out, jobs, *extra), capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - t0
    wrote = sorted(ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("WROTE "))
    other_stdout = sum(1 for ln in p.stdout.splitlines() if ln.strip() and not ln.startswith("WROTE "))
    res: dict[str, Any] = {"rc": p.returncode, "wall_s": round(wall, 1), "wrote_lines": len(wrote),
                           "non_wrote_stdout_lines": other_stdout, "wrote_paths": wrote,
                           "stderr_tail": p.stderr.splitlines()[-3:]}
    try:
        data = json.loads((out / RESULTS).read_text(encoding="utf-8"))
        res["results"] = {"whole": True, "records": len(data["kernels"]), "summary": data["summary"]}
    except (OSError, ValueError, KeyError) as exc:
        res["results"] = {"whole": False, "error": str(exc)}
    return res


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _records(out: Path, written_in: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """The records of ``out``'s results file, paths relative to the folder they were written in."""
    data = json.loads((out / RESULTS).read_text(encoding="utf-8"))
    recs = {}
    for r in data["kernels"]:
        r = {k: v for k, v in r.items() if k != "seconds"}
        if isinstance(r.get("path"), str):
            r["path"] = os.path.relpath(r["path"], written_in)
        recs[(str(r.get("qualified") or r.get("name")), str(r.get("model")), str(r.get("workload")))] = r
    return recs


def compare(run: Path, base: Path) -> dict[str, Any]:
    def files(root: Path) -> dict[str, Path]:
        return {str(p.relative_to(root)): p for p in root.rglob("*")
                if p.is_file() and p.name != RESULTS and not p.name.endswith(".lock")}
    files_a, files_b = files(run), files(base)
    differ = sorted(k for k in files_a.keys() & files_b.keys() if _sha(files_a[k]) != _sha(files_b[k]))
    ra, rb = _records(run, run), _records(base, run)     # both were written in ``run``
    status_differ = sorted(str(k) for k in ra.keys() & rb.keys() if ra[k].get("status") != rb[k].get("status"))
    field_differ: dict[str, int] = {}
    for k in ra.keys() & rb.keys():
        for f in set(ra[k]) | set(rb[k]):
            if ra[k].get(f) != rb[k].get(f):
                field_differ[f] = field_differ.get(f, 0) + 1
    return {"lock_files": [sum(1 for p in d.rglob("*.lock")) for d in (run, base)],
            "only_in_resumed": sorted(files_a.keys() - files_b.keys()),
            "only_in_uninterrupted": sorted(files_b.keys() - files_a.keys()),
            "files_compared": len(files_a.keys() & files_b.keys()), "files_differ": differ,
            "records_resumed": len(ra), "records_uninterrupted": len(rb),
            "records_status_differ": status_differ, "record_fields_differ": dict(sorted(field_differ.items()))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--kill-after", type=float, default=60.0)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--dir", help="work folder (default: a temporary one, removed)")
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--live", action="store_true", help="run the checkout's vkc, not a frozen copy")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vkc-resume-") as tmp:
        work = Path(a.dir) if a.dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        env = _env(None if a.live else freeze_code(work / "code"))
        run, base = work / "out", work / "base"
        out: dict[str, Any] = {"jobs": a.jobs, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}
        if not a.no_baseline:
            out["uninterrupted"] = b = full_run(run, a.jobs, env)
            run.rename(base)
            print(f"uninterrupted: exit {b['rc']} in {b['wall_s']} s, wrote {b['wrote_lines']} artifacts, "
                  f"{b['non_wrote_stdout_lines']} other stdout lines", flush=True)
        out["killed"] = k = killed_run(run, a.jobs, a.kill_after, env)
        print(f"killed run: SIGKILL after {k['killed_after_s']} s, {k['wrote_lines']} WROTE lines, "
              f"{k['journal_lines']} journal lines, {len(k['partial_json_files'])} partial json files, "
              f"session processes alive 1 s / 5 s after: {k['session_procs_alive_1s']} / "
              f"{k['session_procs_alive_5s']}", flush=True)
        out["resumed"] = r = full_run(run, a.jobs, env, "--resume")
        before = {os.path.relpath(p, run) for p in k["wrote_paths"]}
        redone = sorted(p for p in (os.path.relpath(q, run) for q in r["wrote_paths"]) if p in before)
        r["redone_already_written"] = redone
        res = r["results"]
        print(f"resume: exit {r['rc']} in {r['wall_s']} s, wrote {r['wrote_lines']} artifacts "
              f"({len(redone)} of them already written by the killed run), "
              f"results file whole={res['whole']} records={res.get('records')} "
              f"summary={res.get('summary', {}).get('by_class', res.get('summary'))}; "
              f"killed + resumed = {k['killed_after_s'] + r['wall_s']:.1f} s", flush=True)
        out["loadavg_end"] = os.getloadavg()
        if not a.no_baseline:
            out["compare"] = c = compare(run, base)
            print(f"compare: {c['files_compared']} files compared, {len(c['files_differ'])} differ, "
                  f"{len(c['only_in_resumed'])} only in resumed, {len(c['only_in_uninterrupted'])} only in "
                  f"uninterrupted; lock files left (resumed, uninterrupted): {c['lock_files']}; records "
                  f"{c['records_resumed']} vs {c['records_uninterrupted']}, {len(c['records_status_differ'])} "
                  f"with another status; fields that differ: {c['record_fields_differ']}", flush=True)
            for name in c["files_differ"][:10]:
                print(f"  differs: {name}")
        print(f"load average start {out['loadavg_start']}, end {out['loadavg_end']}", flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps(out, indent=1, sort_keys=True, default=str) + "\n")


if __name__ == "__main__":
    main()
