"""vkc export: flat typed rows (artifact + provenance + handoff + verification), JSONL and Parquet."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from vkc.errors import UsageError
from vkc.export import COLUMNS, export_dir, export_rows, parse_provenance
from vkc.export.cli_hooks import add_export_args, run_export

BATCH = Path(__file__).parent.parent / "data" / "report" / "batch"


def _rows():
    return {r["name"]: r for r in export_rows(BATCH)}


def test_rows_provenance_and_results():
    rows = _rows()
    assert sorted(rows) == ["kernel_paged_attention_2d", "moe_align_block_size_kernel", "rms_norm_kernel"]
    for r in rows.values():
        assert list(r) == [c for c, _ in COLUMNS]
        assert r["vkc_version"] == "0.1.0" and r["vllm_version"] == "0.33.0"
    t = rows["kernel_paged_attention_2d"]
    assert (t["kernel_file"], t["kernel_line"], t["module"]) == (
        "vllm/v1/attention/ops/chunked_prefill_paged_decode.py", 45, "vllm.v1.attention.ops.chunked_prefill_paged_decode")
    assert (t["wrapper"], t["wrapper_line"], t["traced"], t["workload_inferred"]) == (
        "chunked_prefill_paged_decode", 480, True, False)
    assert t["config_urls"][0] == "https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json"
    assert t["regenerate_command"].startswith("vkc collect kernel_paged_attention_2d")
    assert t["handoff_source"] == "header" and t["arg_order"] == ["out_ptr", "BLOCK_SIZE"]
    assert json.loads(t["handoff_json"])["meta_params"] == {"BLOCK_SIZE": 16, "num_warps": 4, "num_stages": 3}
    assert (t["run_ok"], t["run_config"], t["run_gbps"], t["run_time_ms"]) == (True, "FULL", 2045.0, 4.2)
    c = rows["rms_norm_kernel"]
    assert c["handoff_source"] == "batch" and c["arg_order"] == ["out", "input", "weight"]
    assert c["instantiations"] == ["vllm::rms_norm_kernel<c10::BFloat16, 8, 2, true>"]
    assert (c["model"], c["workload"], c["workload_inferred"]) == ("Qwen/Qwen3-8B", "prefill", True)
    assert (c["collect_status"], c["collect_seconds"], c["compile_ok"], c["verify_ok"]) == ("written", 3.25, True, True)
    m = rows["moe_align_block_size_kernel"]
    assert (m["verify_ok"], m["verify_failed"], m["run_ok"], m["run_gbps"]) == (False, ["run"], False, None)
    assert m["wrapper"] == "moe_align_block_size" and m["kernel_line"] == 30
    assert m["file"] == "Qwen--Qwen3-8B/prefill/moe_align_block_size_kernel.json"   # nested batch layout
    assert m["collect_seconds"] == 4.0


def test_provenance_of_empty_header():
    p = parse_provenance("triton", "import torch\n")
    assert p.vkc_version is None and p.config_urls == [] and p.traced is None


def test_bad_format(tmp_path):
    with pytest.raises(UsageError):
        export_dir(BATCH, "csv", tmp_path / "x.csv")


def test_jsonl_and_parquet_load_with_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("pyarrow")
    parser = argparse.ArgumentParser()
    add_export_args(parser.add_subparsers(dest="cmd"))
    jl, pq = tmp_path / "k.jsonl", tmp_path / "k.parquet"
    assert run_export(parser.parse_args(["export", str(BATCH), "--out", str(jl)])) == 0
    assert run_export(parser.parse_args(["export", str(BATCH), "--format", "parquet", "--out", str(pq)])) == 0
    assert jl.read_bytes() == export_dir(BATCH, "jsonl", tmp_path / "again.jsonl").read_bytes()  # deterministic
    cache = str(tmp_path / "hf-cache")
    for fmt, path in (("json", jl), ("parquet", pq)):
        ds = datasets.load_dataset(fmt, data_files=str(path), split="train", cache_dir=cache)
        assert ds.num_rows == 3
        assert set(ds.column_names) == {c for c, _ in COLUMNS}
        row = {r["name"]: r for r in ds}["rms_norm_kernel"]
        assert row["kernel_line"] == 15 and row["kernel_type"] == "cuda" and row["run_gbps"] == 2680.0
        assert row["config_urls"] == ["https://huggingface.co/Qwen/Qwen3-8B/blob/main/config.json"]
        assert "__global__" in row["source_code"]
    ds = datasets.load_dataset("parquet", data_files=str(pq), split="train", cache_dir=cache)
    feats = ds.features
    assert feats["kernel_line"].dtype == "int64" and feats["run_gbps"].dtype == "float64"
    assert feats["traced"].dtype == "bool" and feats["instantiations"].feature.dtype == "string"
