"""Custom all-reduce (cross_device_reduce_1stage / _2stage): multi-GPU host programs.

Fast: program structure, vLLM's size/algorithm rules, goldens.  nvcc: the collected
artifact passes the rubric, compiles for sm_90 with the extracted unit and, with no GPU
visible, exits 2 with its message and no launch.  gpu: runs it (1 GPU: exit 2; >= 2: RESULT).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from cases import compile_all, hand_extraction
from helpers import have_extractor, model

from vkc.invoke.cuda import MARKER, invoke_cuda
from vkc.invoke.cuda.recipes.allreduce import MAX_SIZE, ONE_STAGE_BELOW, full_tokens

GOLDEN = Path(__file__).parents[1] / "data" / "invoke_cuda" / "golden"
L70 = "meta-llama/Llama-3.1-70B-Instruct"
AR = "csrc/custom_all_reduce.cuh"
KERNELS = ("cross_device_reduce_1stage", "cross_device_reduce_2stage")
_RESULT = re.compile(r"^RESULT kernel=(\S+) model=(\S+) workload=(\S+) config=(FULL|SMALL) "
                     r"time_ms=([0-9.]+) GB/s=([0-9.]+)$", re.MULTILINE)
_NEEDS = "is a multi-GPU kernel (vLLM custom all-reduce): it needs at least 2 GPUs"


def _inv(tree, name: str, model_id: str = L70, workload: str | None = None):
    return invoke_cuda(tree, hand_extraction(f"{AR}:{name}"), model(model_id), workload,
                       command=f"vkc collect {name} --model {model_id}", name=name)


def _vllm_picks_1stage(world_size: int, nbytes: int) -> bool:
    """REDUCE_CASE's default choice (fully connected), restated independently of the recipe."""
    return world_size == 2 or (world_size <= 4 and nbytes < 512 * 1024) or (world_size <= 8 and nbytes < 256 * 1024)


@pytest.mark.parametrize("name", KERNELS)
def test_program_launches_every_world_size(vllm_tree, name):
    inv = _inv(vllm_tree, name)
    code = inv.code
    stage = 2 if name.endswith("2stage") else 1
    assert inv.facts["min_gpus"] == 2 and inv.workload == "decode"
    assert inv.facts["instantiation"] == f"vllm::{name}<nv_bfloat16, {2 if stage == 1 else 4}>"
    assert [ln for ln in code.splitlines() if ln.startswith(MARKER)] == [MARKER + inv.facts["instantiation"]]
    # one launch line, templated on the world size, and the REDUCE_CASE switch over 2/4/6/8
    launches = [ln.strip() for ln in code.splitlines() if "<<<" in ln]
    assert launches == [(f"vllm::{name}<T, ngpus><<<blocks, threads, 0, r.stream>>>"
                        "(ptrs, sg, self_sg, output, rank, size);")]
    for ws in (2, 4, 6, 8):
        assert f"case {ws}: launch_all<{ws}>(ranks, sg, blocks, size); break;" in code
    # vLLM's launch configuration copied from CustomAllreduce::allreduce, with its origin
    for stmt in ("auto d = packed_t<T>::P::size;", "size /= d;",
                 "int blocks = std::min(block_limit, (size + threads - 1) / threads);"):
        i = code.index(f"  {stmt}\n")
        assert re.search(r"// from csrc/custom_all_reduce\.cuh:\d+\n$", code[:i])
    for needle in ("using T = nv_bfloat16;", "const int hidden_size = 8192;", "constexpr int block_limit = 36;",
                   "constexpr int threads = 512;", "cudaDeviceEnablePeerAccess(peer, 0)",
                   "sizeof(vllm::Signal) + (size_t)max_size", "data.ptrs[i] = ranks[i].input;",
                   "sg.signals[i] = ranks[i].self_sg;", "cudaEventElapsedTime", "VKC_WORLD_SIZE",
                   "return 2;", "2.0 * (world_size - 1) / world_size", "SMALL_SANITY"):
        assert needle in code, needle
    # the < 2 GPU exit comes before any allocation or launch
    assert code.index("return 2;") < code.index("cudaMalloc(") < code.index("vkc_host::launch(world_size")
    header = inv.header
    assert "MODEL_NAME: meta-llama/Llama-3.1-70B-Instruct" in header and "hidden_size=8192" in header
    assert "cudaDeviceEnablePeerAccess" in header and "cudaIpcOpenMemHandle" in header
    assert "2*(n-1)/n * bytes / time" in header


def test_full_sizes_follow_vllm_dispatch(vllm_tree):
    es, hidden = 2, 8192
    for ws in (2, 4, 6, 8):
        t1, t2 = full_tokens(1, ws, hidden, es), full_tokens(2, ws, hidden, es)
        assert t1 * hidden * es < MAX_SIZE and t2 * hidden * es < MAX_SIZE       # should_custom_ar()
        assert _vllm_picks_1stage(ws, t1 * hidden * es)                          # 1-stage by default ...
        assert not _vllm_picks_1stage(ws, (t1 + 1) * hidden * es) or ws == 2     # ... and the largest such
        assert (t2 + 1) * hidden * es >= MAX_SIZE                                # 2-stage: the largest taken
        assert _vllm_picks_1stage(ws, t2 * hidden * es) == (ws == 2)             # ws 2: forced algo only
    assert [full_tokens(1, ws, hidden, es) for ws in (2, 4, 6, 8)] == [511, 31, 15, 15]
    assert ONE_STAGE_BELOW == {2: MAX_SIZE, 4: 512 * 1024, 6: 256 * 1024, 8: 256 * 1024}
    assert "FULL: ws2=511, ws4=31, ws6=15, ws8=15 tokens" in _inv(vllm_tree, KERNELS[0]).header
    assert "FULL: ws2=511, ws4=511, ws6=511, ws8=511 tokens" in _inv(vllm_tree, KERNELS[1]).header


def test_workloads_and_dtype(vllm_tree):
    a = _inv(vllm_tree, KERNELS[0], workload="prefill")
    assert a.workload == "prefill" and '"prefill"' in a.code and "WORKLOAD: prefill (given)" in a.header
    b = _inv(vllm_tree, KERNELS[1], model_id="meta-llama/Llama-3.1-8B-Instruct")
    assert "const int hidden_size = 4096;" in b.code and "ws2=1023" in b.header
    assert _inv(vllm_tree, KERNELS[1]).code == _inv(vllm_tree, KERNELS[1]).code   # deterministic


@pytest.mark.parametrize("name", KERNELS)
def test_golden(vllm_tree, name):
    inv = _inv(vllm_tree, name)
    path = GOLDEN / f"{name}--{L70.replace('/', '__')}.cu"
    if os.environ.get("VKC_UPDATE_GOLDEN") == "1":
        path.write_text(inv.code)
    assert path.exists(), f"missing golden {path.name}; run with VKC_UPDATE_GOLDEN=1"
    assert inv.code == path.read_text()


# ---------------------------------------------------------------- collected artifacts (nvcc)
def _collect(tmp: Path, name: str) -> tuple[Path, str]:
    """vkc collect NAME --model Llama-3.1-70B; the artifact, unit and program written to ``tmp``."""
    from vkc.pipeline import collect
    from vkc.verify import check_artifact
    res = collect(name, model=L70, out_dir=tmp, command=f"vkc collect {name} --model {L70} --out {tmp}")
    path = tmp / Path(res.path).name
    failed = [r.line() for r in check_artifact(path) if not r.ok]
    assert failed == []                                                   # vkc verify's rubric
    kernel = json.loads(path.read_text())["kernel"]
    (tmp / f"{name}.cu").write_text(kernel["source_code"])
    (tmp / f"{name}_main.cu").write_text(kernel["invocation_example"])
    assert kernel["invocation_example"].count("<<<") == 1
    return tmp, name


def _compile_and_check_no_gpu(tmp: Path, name: str) -> Path:
    res = compile_all([_collect(tmp, name)])
    assert res[name][0] == 0, res[name][1]
    exe = tmp / name
    # no GPU visible: a clear message, exit code 2, no launch and no hang
    p = subprocess.run([str(exe)], check=False, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""), capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2 and _NEEDS in p.stderr and "Nothing was launched." in p.stderr, p.stderr
    assert "RESULT" not in p.stdout
    return exe


nvcc_only = [pytest.mark.nvcc, pytest.mark.skipif(not have_extractor(), reason="CUDA extractor not available")]


@pytest.mark.parametrize("name", [
    pytest.param(KERNELS[0], marks=nvcc_only),
    pytest.param(KERNELS[1], marks=[*nvcc_only, pytest.mark.slow]),
])
def test_collected_artifact_verifies_and_compiles(tmp_path, name):
    _compile_and_check_no_gpu(tmp_path, name)


def _gpu_count() -> int:
    import torch
    return torch.cuda.device_count()


@pytest.mark.gpu
@pytest.mark.nvcc
@pytest.mark.parametrize("name", KERNELS)
def test_runs_on_the_gpus(tmp_path, name):
    exe = _compile_and_check_no_gpu(tmp_path, name)
    n = _gpu_count()
    for config, env in (("SMALL", {"SMALL_SANITY": "1"}), ("FULL", {})):
        p = subprocess.run([str(exe)], check=False, env=dict(os.environ, **env), capture_output=True, text=True, timeout=300)
        if n < 2:
            assert p.returncode == 2 and _NEEDS in p.stderr and "found 1" in p.stderr, p.stderr
            assert "RESULT" not in p.stdout
            continue
        assert p.returncode == 0, p.stderr
        assert "vkc: check passed" in p.stderr
        m = _RESULT.findall(p.stdout)
        assert len(m) == 1 and m[0][:4] == (name, L70, "decode", config), p.stdout
        assert float(m[0][4]) > 0 and float(m[0][5]) > 0
