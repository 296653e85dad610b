"""Issue 12: "No synthesized artifact has a zero-filled pointer table or an index argument without a
range: a test scans every generated example's buffer specs."  The scan is ``bench/buffer_specs.py``;
here it is shown to fail on planted bad specs (both languages), and run over the committed generated
examples (tests/data/golden) and, slow, over freshly synthesized examples of the real tree."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden"
_spec = importlib.util.spec_from_file_location("buffer_specs", ROOT / "bench" / "buffer_specs.py")
assert _spec and _spec.loader
scan = importlib.util.module_from_spec(_spec)
sys.modules["buffer_specs"] = scan
_spec.loader.exec_module(scan)

TRITON = """# invocation: synthesized (NOT model-accurate): kernel signature + launch site
CONFIGS = {{
    'FULL': {{'grid': (1,), 'buffers': {{
        'kv_cache_ptrs_ptr': ([16], 'int64', {ptrs}),
        'block_table_ptr': ([4, 8], 'int32', {table}),
        'out_ptr': ([16], 'int32', ('empty',)),
        'x_ptr': ([16], 'bfloat16', ('zeros',)),
    }}, 'args': []}},
}}
"""
CUDA = """// invocation: synthesized (NOT model-accurate): kernel signature + launch site
  // ---- device buffers (deterministic, valid contents)
  // p_slot_mapping: int64_t (generic, fixed size); zeros
  const size_t n_p_slot_mapping = (size_t)(64);
  int64_t* p_slot_mapping = nullptr;
  VKC_CHECK(cudaMalloc(&p_slot_mapping, std::max<size_t>(n_p_slot_mapping, 1) * sizeof(int64_t)));
  {fill}
  VKC_CHECK(cudaGetLastError());
  // p_out: int32_t [n]; zeros
  const size_t n_p_out = (size_t)(64);
  int32_t* p_out = nullptr;
  VKC_CHECK(cudaMemsetAsync(p_out, 0, n_p_out * sizeof(int32_t), stream));
  // ---- launch configuration, as the wrapper computes it
    std::fprintf(mf, "buffer p_slot_mapping in %zu %zu int64_t\\n", sizeof(int64_t), n_p_slot_mapping);
    std::fprintf(mf, "buffer p_out out %zu %zu int32_t\\n", sizeof(int32_t), n_p_out);
"""
ZERO = "VKC_CHECK(cudaMemsetAsync(p_slot_mapping, 0, n_p_slot_mapping * sizeof(int64_t), stream));"
RANGED = ("vkc_host::fill_randint<<<vkc_host::fill_blocks(n_p_slot_mapping), 256, 0, stream>>>"
          "(p_slot_mapping, n_p_slot_mapping, 7ULL, (long long)(0), (long long)(4096));")


def _problems(lang: str, code: str) -> set[tuple[str, str]]:
    n, found = scan.scan_example(lang, code)
    assert n > 0
    return {(f.buffer, f.problem) for f in found}


def test_planted_bad_triton_specs_are_found():
    bad = TRITON.format(ptrs="('zeros',)", table="('zeros',)")
    assert _problems("triton", bad) == {("kv_cache_ptrs_ptr", "pointer table"), ("block_table_ptr", "index without a range")}
    assert _problems("triton", TRITON.format(ptrs="('randint', 0, 9)", table="('randn',)")) == {
        ("kv_cache_ptrs_ptr", "pointer table"), ("block_table_ptr", "index without a range")}   # not a real table either
    fixed = TRITON.replace("        'kv_cache_ptrs_ptr': ([16], 'int64', {ptrs}),\n", "")
    assert _problems("triton", fixed.format(table="('block_table', 64)")) == set()
    real = TRITON.format(ptrs="('pointer_table', 2, 4096)", table="('block_table', 64)")
    assert _problems("triton", real) == set()                 # a table of real allocations
    assert scan.mode_of(bad) == "synthesized"


def test_planted_bad_cuda_specs_are_found():
    assert _problems("cuda", CUDA.format(fill=ZERO)) == {("p_slot_mapping", "index without a range")}
    assert _problems("cuda", CUDA.format(fill=RANGED)) == set()      # p_out is an output: zeros are fine
    rows = scan.cuda_buffers(CUDA.format(fill=ZERO))
    assert [(r[1], r[3], r[4]) for r in rows] == [("p_slot_mapping", "zero", "in"), ("p_out", "zero", "out")]


def test_cli_exit_code_follows_the_synthesized_findings(tmp_path, capsys):
    art = {"name": "k", "kernel": {"kernel_type": "cuda", "invocation_example": CUDA.format(fill=ZERO)}}
    (tmp_path / "k.json").write_text(json.dumps(art))
    assert scan.main([str(tmp_path)]) == 1 and "p_slot_mapping (zero): index without a range" in capsys.readouterr().out
    art["kernel"]["invocation_example"] = CUDA.format(fill=RANGED)
    (tmp_path / "k.json").write_text(json.dumps(art))
    assert scan.main([str(tmp_path)]) == 0


def test_committed_generated_examples_have_clean_buffer_specs():
    rows = [scan.scan_artifact(json.loads(p.read_text())) for p in sorted(GOLDEN.glob("*/*.json"))]
    assert len(rows) >= 10
    readable = [r for r in rows if r["error"] is None]
    # every example has buffer specs the scan reads, except the all-reduce programs (their own template)
    assert {r["name"] for r in rows if r["error"]} <= {"cross_device_reduce_1stage", "cross_device_reduce_2stage"}
    assert all(r["buffers"] > 0 for r in readable)
    assert [(r["name"], r["findings"]) for r in readable if r["findings"]] == []


SYNTHESIZED = ("kv_cache_gather_kernel", "cp_gather_cache_page")


@pytest.fixture(scope="module")
def fresh_rows(tmp_path_factory, vllm_tree):
    out = tmp_path_factory.mktemp("synthesized")
    env = dict(os.environ, VKC_MODEL_TRACE="0", VKC_TEST_TRACE="0", HF_HUB_OFFLINE="1")
    for name in SYNTHESIZED:
        p = subprocess.run([sys.executable, "-m", "vkc", "collect", name, "--out", str(out)], env=env,
                           capture_output=True, text=True, check=False, timeout=600)
        assert p.returncode == 0, p.stderr
    rows = {r["name"]: r for r in (scan.scan_artifact(json.loads(p.read_text())) for p in sorted(out.glob("*.json")))}
    assert set(rows) == set(SYNTHESIZED)
    assert {r["mode"] for r in rows.values()} == {"synthesized"} and all(r["buffers"] for r in rows.values())
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("name", SYNTHESIZED)
def test_freshly_synthesized_index_buffers_have_ranges(fresh_rows, name):
    assert [f for f in fresh_rows[name]["findings"] if f["problem"] != "pointer table"] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", [
    "cp_gather_cache_page",
    "kv_cache_gather_kernel",       # its table of cache pointers: real allocations (init kind pointer_table)
])
def test_freshly_synthesized_examples_have_clean_buffer_specs(fresh_rows, name):
    assert fresh_rows[name]["findings"] == []
