"""``collect --model M --all-used``: exactly the tree kernels M's traced step launches (recorded Llama
trace; no vLLM run), planned per workload, and the argument rules."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from vkc.batch.cli_hooks import check_collect_args
from vkc.batch.plan import plan_jobs
from vkc.batch.used import used_kernels
from vkc.errors import UsageError
from vkc.invoke.triton.modeltraced import session
from vkc.modeltrace.records import trace_from_json

LLAMA = Path(__file__).resolve().parents[1] / "data" / "modeltrace" / "llama-3.1-8b-instruct.trace.json"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
ATTN = "vllm.v1.attention.ops."
EXPECTED_CUDA = {"csrc/activation_kernels.cu:act_and_mul_kernel", "csrc/layernorm_kernels.cu:rms_norm_kernel",
                 "csrc/pos_encoding_kernels.cu:rotary_embedding_kernel"}
EXPECTED_TRITON = {ATTN + "triton_unified_attention:kernel_unified_attention",
                   ATTN + "triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash"}


@pytest.fixture
def index(vllm_tree):
    from vkc.index import build_index
    return build_index(vllm_tree)


@pytest.fixture
def recorded(monkeypatch):
    trace = trace_from_json(json.loads(LLAMA.read_text()))
    monkeypatch.setattr(session, "model_trace_for", lambda tree, m: trace)
    return trace


def test_used_kernels_are_the_traced_tree_kernels(index, recorded):
    used = used_kernels(index, MODEL, ["decode", "prefill"])
    for w in ("decode", "prefill"):
        triton = {k for k in used[w] if ":" in k and not k.startswith("csrc/")}
        assert triton == EXPECTED_TRITON, (w, triton)
        assert EXPECTED_CUDA <= used[w], (w, used[w])   # custom ops -> the kernels their CUDA impl launches
    launched = {ev.name for s in recorded.steps for ev in s.events if ev.kind == "triton"}
    assert {k for ws in used.values() for k in ws if not k.startswith("csrc/")} <= launched


def test_plan_only_the_used_kernels(index, recorded):
    used = used_kernels(index, MODEL, ["decode"])
    jobs = plan_jobs(index, models=[MODEL], workloads=["decode"], only=used)
    assert jobs and {j.qualified for j in jobs} == used["decode"]
    assert all(j.workload == "decode" and j.model == MODEL for j in jobs)


def _args(**kw):
    base = {"kernel": None, "all": False, "all_used": True, "model": [MODEL], "workload": None, "kernel_type": None,
                "jobs": None, "resume": False}
    base.update(kw)
    return argparse.Namespace(**base)


def test_all_used_argument_rules():
    assert check_collect_args(_args()) is True
    for bad in (_args(model=[]), _args(model=[MODEL, "Qwen/Qwen3-8B"]), _args(kernel="k"), _args(all=True)):
        with pytest.raises(UsageError) as e:
            check_collect_args(bad)
        assert e.value.exit_code == 2
