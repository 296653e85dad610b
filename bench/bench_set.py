"""Collect, compile and run the public benchmark set (../shared/bench/kernels.json).

    python bench/bench_set.py collect [--lang triton|cuda] [--dir bench_out] [--jobs 2]
        collect every bench kernel x model into DIR/<model>/, run the rubric and the
        sm_90 compile checks on this (CPU) machine, save DIR/cpu_results.json
    python bench/bench_set.py gpu [--dir bench_out]
        on a GPU machine: run every artifact's invocation example (CUDA ones also under
        compute-sanitizer memcheck), save DIR/gpu_results.json (and $OUT/ when set)
    python bench/bench_set.py table [--dir bench_out]
        print the merged table (kernel, model, collect, compile, GPU run, sanitizer, time, GB/s)
    python bench/bench_set.py one [--dir bench_out/one]
        one artifact per bench kernel (the first of MODELS, then EXTRA_MODELS, that vLLM launches
        it for; the two-GPU all-reduce skipped) into one flat folder, for the timed
        ``time vkc verify --run DIR`` on one GPU (the issue-5 target: < 5 min, all passing);
        ``--every-model``: every one of MODELS (then EXTRA_MODELS if none) that vLLM launches it
        for, into DIR/<model>/ (the GPU issue's bench table at each model where it applies)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = Path(os.environ.get("VKC_BENCH_SET", HERE.parent.parent / "shared" / "bench" / "kernels.json"))
MODELS = ("openai/gpt-oss-120b", "Qwen/Qwen3-Coder-480B-A35B-Instruct", "meta-llama/Llama-3.1-8B-Instruct")
SKIP_GPU = {"cross_device_reduce_1stage"}  # needs two GPUs (separate issue)
# kernels that apply to none of MODELS (MLA-only, DeepSeek grouped top-k) also run at an MLA model
EXTRA_MODELS = {"kernel": ("deepseek-ai/DeepSeek-V3",), "concat_and_cache_mla_kernel": ("deepseek-ai/DeepSeek-V3",),
                "grouped_topk_fused_kernel": ("deepseek-ai/DeepSeek-V3",)}


def _slug(model: str) -> str:
    return model.replace("/", "__")


def _bench_kernels(lang: str | None) -> list[dict]:
    data = json.loads(BENCH.read_text())
    out = []
    for key in ("triton", "cuda"):
        if lang in (None, key):
            out += data[key]
    return out


def _qualified(index, k: dict) -> str:
    cands = [e for e in index.kernels if e.name == k["name"] and e.file == k["file"]]
    if not cands:
        raise SystemExit(f"bench kernel {k['name']} ({k['file']}) is not in the index")
    best = min(cands, key=lambda e: abs(e.line - k["line"]))
    return best.qualified


def _collect_one(job: tuple[str, str, str, str]) -> dict:
    name, qualified, model, out_dir = job
    from vkc.errors import NotApplicableError, VkcError
    from vkc.pipeline import collect
    from vkc.verify import verify_paths
    row = {"kernel": name, "qualified": qualified, "model": model}
    t0 = time.perf_counter()
    try:
        res = collect(qualified, model=model, out_dir=out_dir,
                      command=f"vkc collect {qualified} --model {model}")
    except NotApplicableError as exc:
        row.update(collect="n/a", reason=str(exc))
        return row
    except VkcError as exc:
        row.update(collect="FAIL", reason=str(exc))
        return row
    except Exception as exc:  # noqa: BLE001 - a bug: record it, keep going
        row.update(collect="FAIL", reason=f"internal: {type(exc).__name__}: {exc}")
        return row
    row.update(collect="ok", path=res.path, collect_s=round(time.perf_counter() - t0, 2))
    t1 = time.perf_counter()
    checks = verify_paths([res.path], compile=True)
    failed = [c for c in checks if not c.ok]
    row.update(compile="ok" if not failed else "FAIL", compile_s=round(time.perf_counter() - t1, 2),
               checks_failed=[c.line() for c in failed])
    return row


def cmd_collect(a) -> None:
    from vkc.pipeline import load_index
    index = load_index()
    dest = Path(a.dir) / "cpu_results.json"
    ok_before = {(r["qualified"], r["model"]) for r in (json.loads(dest.read_text()) if dest.exists() else [])
                 if r.get("collect") in ("ok", "n/a") and r.get("compile", "ok") == "ok"}
    jobs = []
    for k in _bench_kernels(a.lang):
        q = _qualified(index, k)
        for m in MODELS + EXTRA_MODELS.get(k["name"], ()):
            if a.only_failed and (q, m) in ok_before:
                continue
            jobs.append((k["name"], q, m, str(Path(a.dir) / _slug(m))))
    t0 = time.perf_counter()
    with ProcessPoolExecutor(a.jobs) as pool:
        rows = list(pool.map(_collect_one, jobs))
    dest = Path(a.dir) / "cpu_results.json"
    old = json.loads(dest.read_text()) if dest.exists() else []
    keep = [r for r in old if (r["qualified"], r["model"]) not in {(x["qualified"], x["model"]) for x in rows}]
    dest.write_text(json.dumps(keep + rows, indent=1))
    print(f"collected {len(rows)} jobs in {time.perf_counter() - t0:.1f}s -> {dest}", file=sys.stderr)


def _selected(a) -> list[dict]:
    rows = json.loads((Path(a.dir) / "cpu_results.json").read_text())
    return [r for r in rows if r.get("collect") == "ok" and r["kernel"] not in SKIP_GPU
            and (not a.lang or _lang_of(r["path"]) == a.lang) and (not a.kernel or r["kernel"] in a.kernel)]


def _cuda_gpu(rows: list[dict], a) -> list[dict]:
    """CUDA programs: build all in parallel (nvcc), time each alone, then compute-sanitizer
    memcheck (SMALL_SANITY shapes, one launch) four at a time."""
    import shutil
    import subprocess
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from vkc.verify.cuda_compile import nvcc_flags
    work = Path(tempfile.mkdtemp(prefix="vkc-gpu-"))

    def build(i_r):
        i, r = i_r
        k = json.loads(Path(r["path"]).read_text())["kernel"]
        d = work / str(i)
        d.mkdir()
        (d / f"{Path(r['path']).stem}.cu").write_text(k["source_code"])
        (d / "main.cu").write_text(k["invocation_example"])
        p = subprocess.run(["nvcc", *nvcc_flags(), "-o", str(d / "prog"), str(d / "main.cu")], cwd=d,
                           capture_output=True, text=True)
        return d, p.returncode, p.stderr[-600:]

    def run(cmd, d, env, timeout=300):
        try:
            p = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env})
        except subprocess.TimeoutExpired:
            return {"ok": False, "reason": f"timed out after {timeout}s"}
        res = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
        if p.returncode == 0 and res:
            return {"ok": True, "reason": res[-1], **_result_fields(res[-1])}
        return {"ok": False, "reason": f"exit {p.returncode}: " + " | ".join((p.stderr + p.stdout).strip().splitlines()[-6:])[:600]}

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max(2, (os.cpu_count() or 2))) as pool:
        built = list(pool.map(build, enumerate(rows)))
    print(f"built {len(built)} programs in {time.perf_counter() - t0:.0f}s", flush=True)
    results = []
    for r, (d, rc, err) in zip(rows, built):
        out = {"qualified": r["qualified"], "model": r["model"]}
        out["run"] = run([str(d / "prog")], d, {}) if rc == 0 else {"ok": False, "reason": "build failed: " + err}
        results.append(out)
        print(json.dumps({k: v for k, v in out.items()}), flush=True)
        _save(a, results)
    tool = shutil.which("compute-sanitizer") or "/usr/local/cuda/bin/compute-sanitizer"
    san_env = {"SMALL_SANITY": "1", "VKC_ITERS": "1"}

    def sanitize(i):
        d, rc, _ = built[i]
        if rc != 0:
            return {"ok": False, "reason": "not built"}
        return run([tool, "--tool", "memcheck", "--error-exitcode", "99", str(d / "prog")], d, san_env, timeout=600)

    with ThreadPoolExecutor(4) as pool:
        for out, san in zip(results, pool.map(sanitize, range(len(rows)))):
            out["sanitizer"] = san
    _save(a, results)
    return results


def cmd_gpu(a) -> None:
    from vkc.verify import verify_paths
    rows = _selected(a)
    if a.lang == "cuda":
        _cuda_gpu(rows, a)
        return
    results = []
    for r in rows:
        path = r["path"]
        t0 = time.perf_counter()
        checks = [c for c in verify_paths([path], run=True, sanitizer=True)
                  if c.check in ("run", "sanitizer")]
        out = {"qualified": r["qualified"], "model": r["model"], "wall_s": round(time.perf_counter() - t0, 1)}
        for c in checks:
            out[c.check] = {"ok": c.ok, "reason": c.reason, **_result_fields(c.reason)}
        results.append(out)
        print(json.dumps({k: (v if not isinstance(v, dict) else {x: v[x] for x in v if x != "reason"})
                          for k, v in out.items()}), flush=True)
        _save(a, results)  # after every artifact: a timeout still leaves what ran


def _lang_of(path: str) -> str:
    return json.loads(Path(path).read_text())["kernel"]["kernel_type"]


def _save(a, results: list) -> None:
    name = f"gpu_results_{a.tag or a.lang or 'all'}.json"
    text = json.dumps(results, indent=1)
    (Path(a.dir) / name).write_text(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], name).write_text(text)


def _result_fields(line: str) -> dict:
    """time_ms, GB/s, TFLOP/s from a ``RESULT k=v ...`` line."""
    f = dict(re.findall(r"(\S+)=(\S+)", line)) if line.startswith("RESULT ") else {}
    return {k2: f[k1] for k1, k2 in (("time_ms", "time_ms"), ("GB/s", "gbps"), ("TFLOP/s", "tflops"),
                                     ("config", "config")) if k1 in f}


def cmd_table(a) -> None:
    rows = json.loads((Path(a.dir) / "cpu_results.json").read_text())
    paths = [Path(p) for p in a.gpu] if a.gpu else sorted(Path(a.dir).glob("gpu_results*.json"))
    gpu = {(g["qualified"], g["model"]): g for p in paths for g in json.loads(p.read_text())}
    print("| kernel | model | collect | compile | GPU run | sanitizer | time ms | GB/s | note |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["qualified"], r["model"])):
        g = gpu.get((r["qualified"], r["model"]), {})
        run, san = g.get("run", {}), g.get("sanitizer", {})
        note = r.get("reason", "") or "; ".join(r.get("checks_failed", []))[:120] or (run.get("reason", "") if run and not run.get("ok") else "")
        print(f"| {r['kernel']} | {r['model'].split('/')[-1]} | {r.get('collect', '')} | {r.get('compile', '-')} | "
              f"{'ok' if run.get('ok') else ('FAIL' if run else '-')} | "
              f"{'clean' if san.get('ok') else ('FAIL' if san else '-')} | "
              f"{run.get('time_ms', '')} | {run.get('gbps', '') or (run.get('tflops', '') + ' TFLOP/s' if run.get('tflops') else '')} | {note[:100]} |")


def cmd_one(a) -> None:
    from vkc.errors import NotApplicableError
    from vkc.pipeline import collect, load_index
    index = load_index()
    out = Path(a.dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    done = 0
    for k in _bench_kernels(None):
        if k["name"] in SKIP_GPU:
            continue
        q = _qualified(index, k)
        hits = 0
        for m in MODELS + EXTRA_MODELS.get(k["name"], ()):
            if a.every_model and hits and m not in MODELS:
                break
            dest = out / _slug(m) if a.every_model else out
            try:
                res = collect(q, model=m, out_dir=str(dest), index=index, command=f"vkc collect {q} --model {m}")
            except NotApplicableError:
                continue
            print(f"{k['name']:40} {m:40} {res.path}")
            done += 1
            hits += 1
            if not a.every_model:
                break
        if not hits:
            print(f"{k['name']:40} no model applies", file=sys.stderr)
    print(f"{done} artifacts in {out} ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--lang", choices=("triton", "cuda"))
    c.add_argument("--dir", default="bench_out")
    c.add_argument("--jobs", type=int, default=2)
    c.add_argument("--only-failed", action="store_true", help="skip (kernel, model) pairs that passed before")
    g = sub.add_parser("gpu")
    g.add_argument("--dir", default="bench_out")
    g.add_argument("--lang", choices=("triton", "cuda"))
    g.add_argument("--kernel", action="append", help="only these kernel names")
    g.add_argument("--tag", help="results file suffix (default: the --lang)")
    t = sub.add_parser("table")
    t.add_argument("--dir", default="bench_out")
    t.add_argument("--gpu", action="append", help="GPU results file(s); later ones win (default: DIR/gpu_results*.json)")
    o = sub.add_parser("one")
    o.add_argument("--dir", default="bench_out/one")
    o.add_argument("--every-model", action="store_true", help="every model of MODELS that applies, DIR/<model>/")
    a = p.parse_args()
    {"collect": cmd_collect, "gpu": cmd_gpu, "table": cmd_table, "one": cmd_one}[a.cmd](a)


if __name__ == "__main__":
    main()
