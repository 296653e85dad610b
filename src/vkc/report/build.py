"""The report's data model (``report.json``), built from a batch folder.

Coverage counts come from ``collect_results.json`` (every kernel attempted: collected, not
applicable to the model, or failed); artifacts it does not list count as collected.  The
collection rate is collected / (attempted - not applicable).  GPU results are the ``run`` checks of
``verify_results.json`` (their reason is the program's RESULT line).  Fidelity is
``fidelity_results.json`` as ``vkc fidelity`` wrote it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import vkc
from vkc.export.inputs import (
    BatchDir,
    checks_for,
    collect_for,
    is_not_applicable,
    is_ok_status,
    load_dir,
    same_file,
)
from vkc.export.provenance import parse_provenance
from vkc.report.family import FAMILY_RULES, family_of
from vkc.result_line import parse_result_line

# NVIDIA H100 Tensor Core GPU datasheet (H100 SXM5 column):
# https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet
H100_PEAK: dict[str, Any] = {
    "gpu": "NVIDIA H100 SXM5 80GB",
    "hbm_gbps": 3350.0,      # HBM3 memory bandwidth 3.35 TB/s
    "bf16_tflops": 989.0,    # dense BF16 Tensor Core (1,979 TFLOP/s is with 2:4 sparsity)
    "source": "NVIDIA H100 Tensor Core GPU datasheet, H100 SXM column: GPU memory bandwidth 3.35 TB/s (HBM3); "
              "BF16 Tensor Core 1,979 TFLOPS with sparsity = 989 TFLOPS dense",
    "url": "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet",
}
# NVIDIA H200 Tensor Core GPU datasheet (H200 SXM column): https://www.nvidia.com/en-us/data-center/h200/
H200_PEAK: dict[str, Any] = {
    "gpu": "NVIDIA H200 SXM 141GB",
    "hbm_gbps": 4800.0,      # HBM3e memory bandwidth 4.8 TB/s
    "bf16_tflops": 989.0,    # dense BF16 Tensor Core (1,979 TFLOP/s is with 2:4 sparsity), as the H100 SXM
    "source": "NVIDIA H200 Tensor Core GPU datasheet, H200 SXM column: GPU memory bandwidth 4.8 TB/s (HBM3e); "
              "BF16 Tensor Core 1,979 TFLOPS with sparsity = 989 TFLOPS dense",
    "url": "https://www.nvidia.com/en-us/data-center/h200/",
}


def peak_for(gpus: list[str]) -> dict[str, Any]:
    """The datasheet peaks of the GPU the RESULT lines name (``gpu=NVIDIA_H200``); H100 otherwise."""
    return H200_PEAK if any("H200" in g for g in gpus) else H100_PEAK


def lang_of(name: str | None, qualified: str | None, given: str | None = None) -> str:
    """``cuda`` for ``csrc/...`` names, ``triton`` for ``module:qualname`` or bare Python names."""
    if given in ("triton", "cuda"):
        return given
    q = qualified or name or ""
    if q.startswith("csrc/") or re.search(r"\.(cu|cuh|h|hpp|inl)(:|@|$)", q):
        return "cuda"
    return "triton" if ":" in q else "unknown"


def failure_reason(error: Any, status: Any, error_class: str | None = None) -> str:
    """A short, kernel-independent class of a collect failure (quoted names and numbers elided)."""
    msg = " ".join(str(error or "").split())
    if not msg:
        return f"{error_class}" if error_class else f"status={status}"
    msg = re.sub(r"^(vkc: )?(error|internal error): ", "", msg)
    msg = re.sub(r"\s*\(hint:.*$", "", msg)
    msg = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "'…'", msg)
    msg = re.sub(r"\b[\w./-]+\.(?:py|cuh|cu|hpp|h)\b(?::\d+)?", "<file>", msg)
    msg = re.sub(r"\d+", "N", msg)
    if error_class and not msg.startswith(f"{error_class}:"):
        msg = f"{error_class}: {msg}"
    if re.match(r"^\w+:", msg):
        head, rest = msg.split(":", 1)
        msg = head + ": " + re.split(r"[;:(\[{]", rest.strip(), maxsplit=1)[0]
    else:
        msg = re.split(r"[;:(\[{]", msg, maxsplit=1)[0]
    return msg.strip()[:90] or f"status={status}"


def _tally(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        t = out.setdefault(r[key], {"attempted": 0, "collected": 0, "not_applicable": 0, "failed": 0})
        t["attempted"] += 1
        t[r["outcome"]] += 1
    return dict(sorted(out.items()))


_MODE_LINE = re.compile(r"^(?:#|//) invocation: ([a-z-]+)", re.M)
ACCURATE_MODES = ("model-traced", "recipe", "test-traced")


def invocation_mode(record: dict[str, Any] | None, example: str | None) -> str | None:
    """The example's invocation mode: collect_results' field, else the header's ``invocation:`` line,
    else (artifacts from an older vkc) ``synthesized`` for an UNTRACED/generic header, ``recipe`` otherwise."""
    if record and record.get("invocation_mode"):
        return str(record["invocation_mode"])
    if example is None:
        return None
    m = _MODE_LINE.search(example)
    if m:
        return m.group(1)
    head = example[:6000]
    return "synthesized" if ("UNTRACED" in head or "untraced/generic" in head) else "recipe"


def _invocation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Collected artifacts by language and invocation mode, and the model-accurate share."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        if r["outcome"] == "collected":
            t = out.setdefault(r["lang"], {})
            t[r["mode"] or "?"] = t.get(r["mode"] or "?", 0) + 1
    summary = {}
    for lang, modes in sorted(out.items()):
        total = sum(modes.values())
        acc = sum(n for m, n in modes.items() if m in ACCURATE_MODES)
        summary[lang] = {"modes": dict(sorted(modes.items())), "collected": total, "model_accurate": acc,
                         "rate": round(acc / total, 4) if total else None}
    return summary


def _attempts(bd: BatchDir) -> list[dict[str, Any]]:
    """One row per kernel attempted: from collect_results, plus artifacts it does not list."""
    rows, seen = [], set()
    for c in bd.collect:
        art = next((a for a in bd.artifacts if same_file(c.get("path"), a.file)), None)
        name = str(c.get("qualified") or c.get("name") or "?")
        prov = parse_provenance(art.kernel_type, art.invocation_example) if art else None
        lang = lang_of(c.get("name"), c.get("qualified"),
                       art.kernel_type if art else (c.get("lang") or c.get("kernel_type")))
        path = (prov.kernel_file if prov else None) or name.split(":")[0]
        outcome = ("collected" if is_ok_status(c.get("status")) else
                   "not_applicable" if is_not_applicable(c.get("status")) else "failed")
        failed = outcome == "failed"
        rows.append({"name": name, "lang": lang, "family": family_of(path, str(c.get("name") or name)),
                     "outcome": outcome, "ok": outcome == "collected",
                     "reason": failure_reason(c.get("error"), c.get("status"), c.get("error_class")) if failed else None,
                     "error": str(c.get("error") or "") if failed else None, "model": c.get("model"),
                     "workload": c.get("workload"), "seconds": c.get("seconds"),
                     "mode": invocation_mode(c, art.invocation_example if art else None) if outcome == "collected"
                     else None})
        if art:
            seen.add(art.file)
    for a in bd.artifacts:
        if a.file in seen or collect_for(bd, a):
            continue
        prov = parse_provenance(a.kernel_type, a.invocation_example)
        rows.append({"name": a.name, "lang": a.kernel_type, "family": family_of(prov.kernel_file, a.name),
                     "outcome": "collected", "ok": True, "reason": None, "error": None, "model": prov.model,
                     "workload": prov.workload, "seconds": None, "mode": invocation_mode(None, a.invocation_example)})
    return sorted(rows, key=lambda r: (r["name"], str(r["model"]), str(r["workload"])))


def _peak(bd: BatchDir) -> dict[str, Any]:
    return peak_for([str((parse_result_line(c["reason"]) or {}).get("gpu") or "")
                     for a in bd.artifacts for c in checks_for(bd, a) if c["check"] == "run" and c["ok"]])


def _pct(value: float | None, peak: float) -> float | None:
    return None if value is None else round(100.0 * value / peak, 2)


def _kernels(bd: BatchDir, fid: dict[Any, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    kernels, gpu = [], []
    peak = _peak(bd)
    for a in bd.artifacts:
        prov = parse_provenance(a.kernel_type, a.invocation_example)
        fam = family_of(prov.kernel_file, a.name)
        checks = checks_for(bd, a)
        run = [c for c in checks if c["check"] == "run"]
        res = next((parse_result_line(c["reason"]) for c in run if c["ok"]), None)
        f = fid.get(a.file)
        kernels.append({"name": a.name, "file": a.file, "lang": a.kernel_type, "family": fam,
                        "kernel_file": prov.kernel_file, "model": prov.model, "workload": prov.workload,
                        "checks": len(checks), "checks_failed": sorted({c["check"] for c in checks if not c["ok"]}),
                        "run": None if not run else ("ok" if res else "failed"),
                        "fidelity": f["status"] if f else None})
        if res:
            full = res.get("config") == "FULL"
            gpu.append({"name": a.name, "lang": a.kernel_type, "family": fam, "model": res.get("model"),
                        "workload": res.get("workload"), "config": res.get("config"), "time_ms": res.get("time_ms"),
                        "gbps": res.get("gbps"), "tflops": res.get("tflops"),
                        "pct_hbm_peak": _pct(res.get("gbps"), peak["hbm_gbps"]) if full else None,
                        "pct_bf16_peak": _pct(res.get("tflops"), peak["bf16_tflops"]) if full else None})
    return kernels, gpu


def _contended(options: dict[str, Any]) -> int | None:
    """``run_jobs`` of a ``verify --run --run-jobs N`` (N > 1) whose results these are, else None:
    its times were taken with N examples sharing the GPU and are not benchmark numbers."""
    jobs = options.get("run_jobs")
    return jobs if isinstance(jobs, int) and jobs > 1 and options.get("times_under_contention") else None


def build_report(directory: str) -> dict[str, Any]:
    """The whole report as a JSON-able dict (deterministic: sorted, no timestamps, no absolute paths)."""
    bd = load_dir(directory)
    fid_results: dict[Any, dict[str, Any]] = {r.get("file"): r for r in (bd.fidelity or {}).get("results", []) if isinstance(r, dict)}
    attempts = _attempts(bd)
    kernels, gpu = _kernels(bd, fid_results)
    reasons: dict[str, list[str]] = {}
    for r in attempts:
        if r["outcome"] == "failed":
            reasons.setdefault(r["reason"], []).append(r["name"])
    checks: dict[str, dict[str, int]] = {}
    for a in bd.artifacts:
        for c in checks_for(bd, a):
            t = checks.setdefault(c["check"], {"ok": 0, "failed": 0})
            t["ok" if c["ok"] else "failed"] += 1
    total = len(attempts)
    collected = sum(r["ok"] for r in attempts)
    not_applicable = sum(r["outcome"] == "not_applicable" for r in attempts)
    fidelity = None
    if bd.fidelity is not None:
        fidelity = {"summary": bd.fidelity.get("summary", {}),
                    "results": [{k: r.get(k) for k in ("name", "kernel_type", "status", "reason", "ir", "original")}
                                for r in sorted(fid_results.values(), key=lambda r: str(r.get("name")))]}
    return {
        "title": f"vkc batch report: {Path(directory).resolve().name}",
        "vkc_version": vkc.__version__,
        "inputs": {"artifacts": len(bd.artifacts), "collect_results": bool(bd.collect),
                   "verify_results": bool(bd.verify), "fidelity_results": bd.fidelity is not None,
                   "unreadable": bd.unreadable, "times_under_contention": _contended(bd.verify_options)},
        "peak": _peak(bd),
        "family_rules": [{"family": f, "pattern": p} for f, p in FAMILY_RULES],
        "coverage": {
            "attempted": total, "collected": collected, "not_applicable": not_applicable,
            "failed": total - collected - not_applicable,
            "rate": round(collected / (total - not_applicable), 4) if total - not_applicable else None,
            "by_language": _tally(attempts, "lang"),
            "by_family": _tally(attempts, "family"),
            "by_invocation": _invocation(attempts),
            "failure_reasons": [{"reason": k, "count": len(v), "kernels": sorted(v)}
                                for k, v in sorted(reasons.items(), key=lambda kv: (-len(kv[1]), kv[0]))],
        },
        "checks": dict(sorted(checks.items())),
        "gpu": sorted(gpu, key=lambda g: g["name"]),
        "fidelity": fidelity,
        "kernels": kernels,
        "failures": [{k: r[k] for k in ("name", "lang", "family", "reason", "error")}
                     for r in attempts if r["outcome"] == "failed"],
    }
