"""Collect, compile and run the public benchmark set (../shared/bench/kernels.json).

    python bench/bench_set.py collect [--lang triton|cuda] [--dir bench_out] [--jobs 2]
        collect every bench kernel x model into DIR/<model>/, run the rubric and the
        sm_90 compile checks on this (CPU) machine, save DIR/cpu_results.json
    python bench/bench_set.py gpu [--dir bench_out]
        on a GPU machine: run every artifact's invocation example (CUDA ones also under
        compute-sanitizer memcheck), save DIR/gpu_results.json (and $OUT/ when set)
    python bench/bench_set.py table [--dir bench_out]
        print the merged table (kernel, model, collect, compile, GPU run, sanitizer, time, GB/s)
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
    except Exception as exc:  # a bug: record it, keep going
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


def cmd_gpu(a) -> None:
    from vkc.verify import verify_paths
    rows = json.loads((Path(a.dir) / "cpu_results.json").read_text())
    results = []
    for r in rows:
        if r.get("collect") != "ok" or r["kernel"] in SKIP_GPU:
            continue
        if a.lang and _lang_of(r["path"]) != a.lang:
            continue
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
        _save(a.dir, results)  # after every artifact: a timeout still leaves what ran


def _lang_of(path: str) -> str:
    return json.loads(Path(path).read_text())["kernel"]["kernel_type"]


def _save(d: str, results: list) -> None:
    text = json.dumps(results, indent=1)
    (Path(d) / "gpu_results.json").write_text(text)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_results.json").write_text(text)


def _result_fields(line: str) -> dict:
    """time_ms, GB/s, TFLOP/s from a ``RESULT k=v ...`` line."""
    f = dict(re.findall(r"(\S+)=(\S+)", line)) if line.startswith("RESULT ") else {}
    return {k2: f[k1] for k1, k2 in (("time_ms", "time_ms"), ("GB/s", "gbps"), ("TFLOP/s", "tflops"),
                                     ("config", "config")) if k1 in f}


def cmd_table(a) -> None:
    rows = json.loads((Path(a.dir) / "cpu_results.json").read_text())
    gpath = Path(a.gpu or Path(a.dir) / "gpu_results.json")
    gpu = {(g["qualified"], g["model"]): g for g in json.loads(gpath.read_text())} if gpath.exists() else {}
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
    t = sub.add_parser("table")
    t.add_argument("--dir", default="bench_out")
    t.add_argument("--gpu")
    a = p.parse_args()
    {"collect": cmd_collect, "gpu": cmd_gpu, "table": cmd_table}[a.cmd](a)


if __name__ == "__main__":
    main()
