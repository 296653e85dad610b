"""The one parser of an invocation example's ``RESULT`` line (a leaf: verify, export and report use it).

``RESULT kernel=.. model=.. workload=.. config=FULL|SMALL time_ms=.. GB/s=.. bytes=.. dtype=.. gpu=..
stat=median warmup=10 reps=100 l2_flush_MiB=.. [check=PASS|FAIL|skipped max_abs_err=.. max_rel_err=..
written=all|partial]`` -> a typed dict; fields an older example does not print are None.
"""
from __future__ import annotations

import re
from typing import Any

__all__ = ["check_fields", "parse_result_line"]

_RESULT_KV = re.compile(r"(\S+?)=(\S+)")


def parse_result_line(line: str) -> dict[str, Any] | None:
    """``RESULT kernel=.. model=.. workload=.. config=FULL time_ms=.. GB/s=..`` -> typed dict."""
    if not line or not line.startswith("RESULT"):
        return None
    kv = dict(_RESULT_KV.findall(line))
    out: dict[str, Any] = {"kernel": kv.get("kernel"), "model": kv.get("model"),
                           "workload": kv.get("workload"), "config": kv.get("config")}
    for key, name in (("time_ms", "time_ms"), ("GB/s", "gbps"), ("TFLOP/s", "tflops"), ("bytes", "bytes"),
                      ("flops", "flops"), ("l2_flush_MiB", "l2_flush_mib")):
        try:
            out[name] = float(kv[key]) if key in kv else None
        except ValueError:
            out[name] = None
    # the timing protocol (absent from examples made before it was printed)
    for key in ("dtype", "gpu", "stat"):
        out[key] = kv.get(key)
    for key in ("warmup", "reps"):
        out[key] = int(kv[key]) if kv.get(key, "").isdigit() else None
    # the reference check (only examples with a reference print it: PASS | FAIL | skipped)
    out["check"] = kv.get("check")
    out["written"] = kv.get("written")
    for key in ("max_abs_err", "max_rel_err"):
        try:
            out[key] = float(kv[key]) if key in kv else None
        except ValueError:
            out[key] = None
    return out


def check_fields(line: str) -> dict[str, Any]:
    """The reference check's fields of a RESULT line ({} when the example printed no check)."""
    r = parse_result_line(line.strip()) or {}
    if not r.get("check"):
        return {}
    return {k: r.get(k) for k in ("check", "written", "max_abs_err", "max_rel_err")}
