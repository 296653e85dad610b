"""Issue 12: the generic CUDA plan fills index-like buffers from a range and builds pointer tables from a real
allocation (:mod:`vkc.invoke.cuda.untraced.contents`); one test per rule, and real kernels through the scan."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import model

from vkc.invoke.cuda import invoke_cuda
from vkc.invoke.cuda.untraced.contents import (
    index_fill,
    index_kind,
    is_pointer_table,
    pointer_table,
    reach,
)

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("buffer_specs_scan_cuda", ROOT / "bench" / "buffer_specs.py")
assert _spec and _spec.loader
scan = importlib.util.module_from_spec(_spec)
sys.modules["buffer_specs_scan_cuda"] = scan
_spec.loader.exec_module(scan)
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


# ---------------------------------------------------------------- the rules
def test_kinds_by_name():
    assert index_kind("cu_seq_lens", "int32_t") == "cumulative"
    assert index_kind("query_start_loc", "int32_t") == "cumulative"
    assert index_kind("expert_offsets", "int64_t") == "cumulative"
    assert index_kind("seq_lens", "int") == "lengths" and index_kind("lengths", "int32_t") == "lengths"
    assert index_kind("topk_ids", "int32_t") == "experts" and index_kind("expert_ids_ptr", "int32_t") == "experts"
    assert index_kind("slot_mapping", "int64_t") == "index" and index_kind("block_table", "int") == "index"
    assert index_kind("positions", "int64_t") == "index"
    assert index_kind("slot_mapping", "float") is None and index_kind("out", "int32_t") is None
    assert is_pointer_table("kv_cache_ptrs", "int64_t") and is_pointer_table("peer_lse", "float*")
    assert not is_pointer_table("slot_mapping", "int64_t")


def test_reach_and_fills():
    assert reach(1 << 20, [4096, 64, 1]) == 64 and reach(1 << 20, []) == 1 << 18 and reach(8, [4096]) == 1
    fill, _ = index_fill("index", 64, 64, None)
    assert (fill.kind, fill.a, fill.b) == ("randint", "0", "64")
    fill, _ = index_fill("experts", 64, 64, 128)
    assert (fill.kind, fill.b) == ("randint", "64")            # below min(num_experts, reach)
    fill, _ = index_fill("experts", 64, 64, None)
    assert (fill.kind, fill.b) == ("randint", "1")
    fill, _ = index_fill("cumulative", 640, 64, None)          # segments of 10: sorted over tokens + 1 entries
    seg, mod = int(fill.a), int(fill.c)
    vals = [(i * seg + int(fill.b)) % mod for i in range(65)]
    assert fill.kind == "affine" and seg == 10 and vals == sorted(vals) and vals[-1] <= 640
    fill, _ = index_fill("lengths", 640, 64, None)
    assert (fill.kind, fill.a) == ("const", "10")


def test_pointer_table_points_at_a_real_pool():
    pool, fill = pointer_table("p_ptrs", "int64_t", "p_ptrs_pool")
    assert pool.name == "p_ptrs_pool" and pool.ctype == "unsigned char" and fill.kind == "host"
    assert "h[i] = (int64_t)(uintptr_t)(p_ptrs_pool);" in fill.code
    pool, fill = pointer_table("p_out_ptrs", "float*", "p_out_ptrs_pool")
    assert pool.ctype == "float" and "(float*)(uintptr_t)(p_out_ptrs_pool)" in fill.code
    pool, _ = pointer_table("p_sig", "void*", "p_sig_pool")
    assert pool.ctype == "unsigned char"


# ---------------------------------------------------------------- real kernels (no nvcc)
@pytest.fixture(scope="module")
def index(vllm_tree):
    from vkc.pipeline import load_index
    return load_index()


def _collect(index, name: str):
    from vkc.extract import extract
    from vkc.index import lookup
    ex = extract(index.tree, lookup(index, name), name=name)
    return ex, invoke_cuda(index.tree, ex, model(LLAMA), None, command=f"vkc collect {name}", name=name)


@pytest.mark.parametrize("name", ["cp_gather_cache_page", "concat_and_cache_mla_grouped_kernel",
                                  "dispatch_output_lse_kernel", "moe_wna16_gemm_kernel"])
def test_generic_programs_pass_the_buffer_scan(index, name):
    _ex, inv = _collect(index, name)
    n, found = scan.scan_example("cuda", inv.code)
    assert n > 0 and found == []


def test_pointer_table_is_filled_after_its_pool(index):
    _ex, inv = _collect(index, "concat_and_cache_mla_grouped_kernel")
    code = inv.code
    assert code.index("p_kv_cache_ptrs_pool = nullptr") < code.index("h_p_kv_cache_ptrs(")
    assert "h[i] = (int64_t)(uintptr_t)(p_kv_cache_ptrs_pool);" in code


@pytest.mark.nvcc
@pytest.mark.slow
def test_pointer_table_program_compiles(index, tmp_path):
    if shutil.which("nvcc") is None:
        pytest.skip("nvcc not on PATH")
    from vkc.verify.cuda_compile import nvcc_flags
    ex, inv = _collect(index, "dispatch_output_lse_kernel")
    (tmp_path / inv.facts["unit_file"]).write_text(ex.source_code)
    main = tmp_path / inv.facts["main_file"]
    main.write_text(inv.code)
    p = subprocess.run(["nvcc", *nvcc_flags(), "-c", str(main), "-o", str(tmp_path / "m.o")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
