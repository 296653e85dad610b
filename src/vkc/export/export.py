"""``vkc export DIR --format jsonl|parquet``: one flat, typed row per artifact.

Columns (see COLUMNS): the artifact fields, its provenance (from the invocation example's
header, :mod:`vkc.export.provenance`), the spec's handoff record, the batch collect result
and the verification results.  The handoff comes from the batch runner when it saved one
(``handoff`` in the collect result, or ``DIR/handoffs/<relpath>.json`` / ``DIR/<relpath minus .json>.handoff.json``);
otherwise a partial one is rebuilt from the header (``handoff_source = "header"``).
Nested values (handoff, checks) are also kept whole as JSON strings.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vkc.errors import UsageError, WriteError
from vkc.export.inputs import (
    ArtifactRecord,
    BatchDir,
    checks_for,
    collect_for,
    load_dir,
)
from vkc.export.provenance import literals, parse_provenance
from vkc.result_line import parse_result_line

# name -> type ("string", "int64", "float64", "bool", "list<string>"); order = column order
COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "string"), ("file", "string"), ("kernel_type", "string"),
    ("source_code", "string"), ("invocation_example", "string"),
    ("vkc_version", "string"), ("vllm_version", "string"), ("vllm_source_url", "string"),
    ("kernel_symbol", "string"), ("kernel_file", "string"), ("kernel_line", "int64"), ("module", "string"),
    ("wrapper", "string"), ("wrapper_file", "string"), ("wrapper_line", "int64"),
    ("model", "string"), ("workload", "string"), ("workload_inferred", "bool"), ("traced", "bool"),
    ("instantiations", "list<string>"), ("grid", "string"), ("config_urls", "list<string>"),
    ("regenerate_command", "string"),
    ("handoff_source", "string"), ("leaf_symbols", "list<string>"), ("arg_order", "list<string>"),
    ("grid_expr", "string"), ("smem_formula", "string"), ("stride_semantics", "string"), ("handoff_json", "string"),
    ("collect_status", "string"), ("collect_error_class", "string"), ("collect_error", "string"), ("collect_seconds", "float64"),
    ("verify_ok", "bool"), ("verify_checks", "list<string>"), ("verify_failed", "list<string>"),
    ("compile_ok", "bool"), ("run_ok", "bool"), ("run_config", "string"), ("run_time_ms", "float64"),
    ("run_gbps", "float64"), ("run_tflops", "float64"), ("verify_json", "string"),
)


def _handoff(bd: BatchDir, art: ArtifactRecord, collect: dict[str, Any] | None,
             prov: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    if collect and isinstance(collect.get("handoff"), dict):
        return "batch", collect["handoff"]
    rel = art.file.removesuffix(".json")
    for p in (bd.root / "handoffs" / f"{rel}.json", bd.root / f"{rel}.handoff.json"):
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict):
            return "batch", obj.get("handoff", obj)
    # rebuilt from what the header states
    if art.kernel_type == "triton":
        lit = literals(art.invocation_example, ("VKC_COMPILE", "CONFIGS"))
        comp, full = lit.get("VKC_COMPILE") or {}, (lit.get("CONFIGS") or {}).get("FULL") or {}
        if not comp and not full:
            return "none", None
        meta = dict(full.get("constexprs") or comp.get("constexprs") or {})
        meta.update({k: full.get(k, comp.get(k)) for k in ("num_warps", "num_stages")})
        return "header", {"leaf_symbols": [comp.get("entry") or prov.get("entry")],
                          "arg_order": list((comp.get("signature") or {}).keys()),
                          "grid_expr": str(tuple(full["grid"])) if full.get("grid") else prov.get("grid"),
                          "meta_params": meta, "smem_formula": None, "stride_semantics": "elements"}
    if not prov.get("instantiations") and not prov.get("grid"):
        return "none", None
    grid = prov.get("grid") or ""
    smem = grid.split("SMEM:", 1)[1].strip() if "SMEM:" in grid else None
    return "header", {"leaf_symbols": list(prov.get("instantiations") or []), "arg_order": [],
                      "grid_expr": grid.split("SMEM:", 1)[0].strip() or None, "meta_params": {},
                      "smem_formula": None if smem in (None, "0 bytes") else smem, "stride_semantics": None}


def _strs(v: Any) -> list[str]:
    return [str(x) for x in v] if isinstance(v, (list, tuple)) else []


def _row(bd: BatchDir, art: ArtifactRecord) -> dict[str, Any]:
    prov = parse_provenance(art.kernel_type, art.invocation_example).to_json()
    collect = collect_for(bd, art)
    src, handoff = _handoff(bd, art, collect, prov)
    checks = checks_for(bd, art)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for c in checks:
        by_id.setdefault(c["check"], []).append(c)
    compile_checks = [c for k, cs in by_id.items() if k.startswith("compile") for c in cs]
    run = next((c for c in by_id.get("run", []) if c["ok"]), None)
    res = parse_result_line(run["reason"]) if run else None
    row: dict[str, Any] = {
        "name": art.name, "file": art.file, "kernel_type": art.kernel_type,
        "source_code": art.source_code, "invocation_example": art.invocation_example,
        **{k: prov.get(k) for k in ("vkc_version", "vllm_version", "vllm_source_url", "kernel_symbol",
                                   "kernel_file", "kernel_line", "module", "wrapper", "wrapper_file",
                                   "wrapper_line", "model", "workload", "workload_inferred", "traced",
                                   "grid", "regenerate_command")},
        "instantiations": _strs(prov.get("instantiations")), "config_urls": _strs(prov.get("config_urls")),
        "handoff_source": src,
        "leaf_symbols": _strs((handoff or {}).get("leaf_symbols")),
        "arg_order": _strs((handoff or {}).get("arg_order")),
        "grid_expr": _opt_str((handoff or {}).get("grid_expr")),
        "smem_formula": _opt_str((handoff or {}).get("smem_formula")),
        "stride_semantics": _opt_str((handoff or {}).get("stride_semantics")),
        "handoff_json": json.dumps(handoff, sort_keys=True, default=str) if handoff is not None else None,
        "collect_status": _opt_str((collect or {}).get("status")),
        "collect_error_class": _opt_str((collect or {}).get("error_class")),
        "collect_error": _opt_str((collect or {}).get("error")),
        "collect_seconds": _opt_float((collect or {}).get("seconds")),
        "verify_ok": all(c["ok"] for c in checks) if checks else None,
        "verify_checks": sorted(by_id),
        "verify_failed": sorted({c["check"] for c in checks if not c["ok"]}),
        "compile_ok": all(c["ok"] for c in compile_checks) if compile_checks else None,
        "run_ok": any(c["ok"] for c in by_id["run"]) if "run" in by_id else None,
        "run_config": (res or {}).get("config"), "run_time_ms": (res or {}).get("time_ms"),
        "run_gbps": (res or {}).get("gbps"), "run_tflops": (res or {}).get("tflops"),
        "verify_json": json.dumps([{k: c[k] for k in ("check", "ok", "reason")} for c in checks]) if checks else None,
    }
    if row["model"] == "":
        row["model"] = None
    return {name: row.get(name) for name, _ in COLUMNS}


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


def _opt_float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def export_rows(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of ``vkc export`` (sorted by artifact file name)."""
    bd = load_dir(directory)
    return [_row(bd, a) for a in bd.artifacts]


def arrow_schema():
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
             "list<string>": pa.list_(pa.string())}
    return pa.schema([(n, types[t]) for n, t in COLUMNS])


def export_dir(directory: str | os.PathLike[str], fmt: str = "jsonl", out: str | os.PathLike[str] | None = None) -> Path:
    """Write ``DIR/kernels.<fmt>`` (or ``out``); returns the path written."""
    if fmt not in ("jsonl", "parquet"):
        raise UsageError(f"unknown export format {fmt!r}", hint="use --format jsonl or --format parquet")
    rows = export_rows(directory)
    path = Path(out) if out else Path(directory) / f"kernels.{fmt}"
    tmp = path.with_name(path.name + ".tmp")
    try:
        if fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in rows)
        else:
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError as e:
                raise UsageError("parquet export needs pyarrow", hint="pip install 'vkc[export]' (or pyarrow)") from e
            table = pa.Table.from_pylist(rows, schema=arrow_schema())
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e}", hint="check the --out path") from e
    return path
