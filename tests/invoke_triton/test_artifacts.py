"""Golden file, sm_90 compile check and a SMALL_SANITY run under TRITON_INTERPRET=1."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from invoke_triton.conftest import artifact
from vkc.verify.triton_compile import compile_artifact, run_artifact

pytestmark = pytest.mark.sdist
GOLDEN = Path(__file__).parent.parent / "data" / "invoke_triton" / "golden"


def test_golden_merge_attn_states_llama(invocation):
    _, inv = invocation("merge_attn_states_kernel", "meta-llama/Llama-3.1-8B-Instruct", None)
    path = GOLDEN / "merge_attn_states_kernel--Llama-3.1-8B-Instruct.py"
    if os.environ.get("VKC_UPDATE_GOLDEN") == "1":
        path.write_text(inv.code)
    assert inv.code == path.read_text(), "golden differs; VKC_UPDATE_GOLDEN=1 regenerates"


@pytest.mark.parametrize("name,model_id,workload", [
    ("merge_attn_states_kernel", "meta-llama/Llama-3.1-8B-Instruct", None),
    ("kernel_paged_attention_2d", "openai/gpt-oss-120b", None),
])
def test_compile_sm90(invocation, name, model_id, workload):
    ex, inv = invocation(name, model_id, workload)
    res = compile_artifact("a.json", artifact(ex, inv))
    assert [r.ok for r in res] == [True], res[0].reason


@pytest.mark.slow
@pytest.mark.parametrize("name,model_id,workload", [
    ("kernel_unified_attention", "meta-llama/Llama-3.1-8B-Instruct", "prefill"),
    ("_fwd_kernel", "Qwen/Qwen3-Coder-480B-A35B-Instruct", None),
    ("_fwd_grouped_kernel_stage1", "deepseek-ai/DeepSeek-V3", None),
    ("reshape_and_cache_kernel_flash", "openai/gpt-oss-120b", None),
])
def test_compile_sm90_more(invocation, name, model_id, workload):
    ex, inv = invocation(name, model_id, workload)
    res = compile_artifact("a.json", artifact(ex, inv))
    assert [r.ok for r in res] == [True], res[0].reason


def test_compile_reports_broken_source(invocation):
    ex, inv = invocation("merge_attn_states_kernel", "meta-llama/Llama-3.1-8B-Instruct", None)
    art = artifact(ex, inv)
    art["kernel"]["source_code"] = art["kernel"]["source_code"].replace("tl.store(", "tl.stor(", 1)
    res = compile_artifact("a.json", art)
    assert res[0].ok is False


def test_small_sanity_run_on_cpu(invocation):
    ex, inv = invocation("merge_attn_states_kernel", "meta-llama/Llama-3.1-8B-Instruct", None)
    res = run_artifact("a.json", artifact(ex, inv), small=True)
    assert res[0].ok, res[0].reason
    line = res[0].reason
    assert line.startswith("RESULT kernel=merge_attn_states_kernel model=meta-llama/Llama-3.1-8B-Instruct "
                           "workload=prefill config=SMALL time_ms=") and " GB/s=" in line
