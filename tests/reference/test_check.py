"""The reference check in a generated Triton example, run at SMALL under TRITON_INTERPRET=1 on CPU.

One recipe-made example (SwiGLU-step-and-mul, its reference vLLM's ``SwigluStepAndMul.forward_native``)
is run as generated (PASS, through ``vkc verify --run``'s runner), with a planted off-by-one grid (an unwritten row block: FAIL,
written=partial) and with a planted wrong output (FAIL, written=all).  ``vkc verify --run``'s
Triton runner records the check's fields.
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vkc
from vkc.result_line import check_fields, parse_result_line
from vkc.verify.triton_compile import run_artifact
from vkc.write import read_artifact

pytestmark = pytest.mark.sdist
KERNEL = "vllm.model_executor.layers.activation:_swiglustep_and_mul_kernel"
MODEL = "openai/gpt-oss-120b"


@pytest.fixture(scope="module")
def artifact(vllm_tree, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("check")
    res = vkc.collect(KERNEL, model=MODEL, out_dir=out)
    path = out / Path(res.path).name
    return path, json.loads(path.read_text())


def _run(tmp: Path, art: dict, *, example: str | None = None, kernel: str | None = None) -> tuple[int, str]:
    k = art["kernel"]
    code = example if example is not None else k["invocation_example"]
    kernel_file = re.search(r"^KERNEL_FILE = '([^']+)'$", code, re.M).group(1)
    (tmp / kernel_file).write_text(kernel if kernel is not None else k["source_code"])
    (tmp / "example.py").write_text(code)
    env = dict(os.environ, SMALL_SANITY="1", TRITON_INTERPRET="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "example.py"], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), "")
    return proc.returncode, line or proc.stdout + proc.stderr


def test_header_names_the_reference_and_tolerance(artifact):
    _path, art = artifact
    code = art["kernel"]["invocation_example"]
    assert "# reference: forward_native vllm/model_executor/layers/activation.py:528" in code
    assert re.search(r"^#   o_ptr \(float16\): atol=0\.001 rtol=0\.001 \(vllm/ir/tolerances\.py\)$", code, re.M)
    assert "\ndef reference(a, c):" in code
    mods = [a.name for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Import) for a in n.names]
    mods += [n.module or "" for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ImportFrom)]
    assert mods and not [m for m in mods if m.split(".")[0] == "vllm"]


def test_off_by_one_grid_is_a_partial_write(artifact, tmp_path):
    _path, art = artifact
    code = art["kernel"]["invocation_example"]
    small = code.index("'SMALL': {")
    m = re.compile(r"'grid': \((\d+), ").search(code, small)
    planted = code[:m.start(1)] + str(int(m.group(1)) - 1) + code[m.end(1):]
    rc, line = _run(tmp_path, art, example=planted)
    assert rc == 1, line
    parsed = parse_result_line(line)
    assert parsed is not None and parsed["check"] == "FAIL" and parsed["written"] == "partial", line


def test_wrong_output_fails(artifact, tmp_path):
    _path, art = artifact
    src = art["kernel"]["source_code"]
    assert "result = gate_clamped * up_clamped" in src
    rc, line = _run(tmp_path, art, kernel=src.replace("result = gate_clamped * up_clamped",
                                                      "result = gate_clamped * up_clamped * 1.01"))
    assert rc == 1, line
    parsed = parse_result_line(line)
    assert parsed is not None and parsed["check"] == "FAIL" and parsed["written"] == "all", line
    assert parsed["max_rel_err"] > 1e-3


def test_generated_example_passes_and_verify_records_it(artifact):
    """As generated: PASS, every output element written; ``vkc verify --run`` keeps the fields."""
    path, _art = artifact
    (res,) = run_artifact(str(path), read_artifact(path), sandboxed=False)
    assert res.ok, res.reason
    parsed = parse_result_line(res.reason)
    assert parsed is not None and parsed["check"] == "PASS" and parsed["written"] == "all", res.reason
    assert parsed["config"] == "SMALL" and parsed["time_ms"] is not None
    assert res.details["check"] == "PASS" and res.details["written"] == "all"
    assert isinstance(res.details["max_abs_err"], float) and res.details["max_abs_err"] < 1e-2


def test_result_fields_parse():
    line = ("RESULT kernel=k model=m workload=decode config=SMALL time_ms=1.5 GB/s=2 bytes=10 dtype=float16 gpu=none "
            "stat=single warmup=0 reps=1 l2_flush_MiB=0 check=FAIL max_abs_err=0.25 max_rel_err=inf written=partial")
    parsed = parse_result_line(line)
    assert parsed is not None
    assert (parsed["check"], parsed["written"], parsed["max_abs_err"]) == ("FAIL", "partial", 0.25)
    assert parsed["gbps"] == 2.0 and parsed["reps"] == 1                 # the existing fields, unchanged
    assert check_fields(line)["max_rel_err"] == float("inf")
    old = parse_result_line(line.split(" check=")[0])                    # an example without a reference
    assert old is not None and old["check"] is None and old["written"] is None and old["time_ms"] == 1.5
    assert check_fields(line.split(" check=")[0]) == {}


@pytest.mark.slow
def test_unified_attention_prefill_mapping(vllm_tree, tmp_path, monkeypatch):
    """kernel_unified_attention's 2D (prefill) launch against ref_paged_attn, model-traced at Llama-3.1-8B.

    The traced SMALL buffers are bf16, and Triton's interpreter computes bf16 ``tl.dot`` wrongly on CPU
    (outputs ~1e8: a finding, not a mapping error), so the same launch runs with its floating buffers
    as float32: the mapping (query/cache views, lengths, block table, scale) must then PASS."""
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    res = vkc.collect("vllm.v1.attention.ops.triton_unified_attention:kernel_unified_attention",
                      model="meta-llama/Llama-3.1-8B-Instruct", workload="prefill", out_dir=tmp_path)
    art = json.loads((tmp_path / Path(res.path).name).read_text())
    code = art["kernel"]["invocation_example"]
    assert "# reference: test-reference tests/kernels/attention/test_triton_unified_attention.py:386" in code
    rc, line = _run(tmp_path, art, example=code.replace("'bfloat16'", "'float32'"))
    parsed = parse_result_line(line)
    assert rc == 0 and parsed is not None and parsed["check"] == "PASS" and parsed["written"] == "all", line


HARVESTED = "vllm.model_executor.layers.fused_embed_norm:_fused_embed_norm_kernel"


@pytest.fixture(scope="module")
def harvested(vllm_tree, tmp_path_factory) -> dict:
    """A reference vkc.reference.harvest derived from the test the launch was traced from (no table row):
    test_fused_embed_norm_matches_reference compares the wrapper's (residual, normed) against
    ``table[ids]`` and ``_rmsnorm(embeds, weight, EPS)``."""
    out = tmp_path_factory.mktemp("harvested")
    mp = pytest.MonkeyPatch()
    mp.setenv("VKC_TEST_TRACE", "1")
    try:
        res = vkc.collect(HARVESTED, out_dir=out)
    finally:
        mp.undo()
    return json.loads((out / Path(res.path).name).read_text())


@pytest.mark.slow
def test_harvested_reference_passes_and_catches_planted_bugs(harvested, tmp_path):
    code = harvested["kernel"]["invocation_example"]
    assert "# reference: test-reference tests/kernels/core/test_fused_embed_norm.py:42" in code
    assert "weight=a['chain_w_ptr']" in code and "table=a['table_ptr']" in code and "ids=a['ids_ptr']" in code
    rc, line = _run(tmp_path, harvested)
    parsed = parse_result_line(line)
    assert rc == 0 and parsed is not None and parsed["check"] == "PASS" and parsed["written"] == "all", line
    # a wrong mapping (the norm weight reversed): FAIL
    rc, line = _run(tmp_path, harvested, example=code.replace("weight=a['chain_w_ptr']",
                                                               "weight=a['chain_w_ptr'].flip(0)"))
    parsed = parse_result_line(line)
    assert rc == 1 and parsed is not None and parsed["check"] == "FAIL", line
    # one row block left unwritten (grid one short): FAIL, written=partial
    small = code.index("'SMALL': {")
    m = re.compile(r"'grid': \((\d+),").search(code, small)
    rc, line = _run(tmp_path, harvested, example=code[:m.start(1)] + str(int(m.group(1)) - 1) + code[m.end(1):])
    parsed = parse_result_line(line)
    assert rc == 1 and parsed is not None and parsed["check"] == "FAIL" and parsed["written"] == "partial", line
    # a wrong kernel (the norm 5% off; the test's own rtol is 1e-2, so 1% would pass): FAIL
    src = harvested["kernel"]["source_code"]
    assert "return (x * rrms) * w" in src
    rc, line = _run(tmp_path, harvested, kernel=src.replace("return (x * rrms) * w", "return (x * rrms) * w * 1.05"))
    parsed = parse_result_line(line)
    assert rc == 1 and parsed is not None and parsed["check"] == "FAIL", line
