"""Session traces shared by the model-trace tests: at most two worker processes per run
(Llama-3.1-8B and Qwen3-30B-A3B, 2 layers, the default decode and prefill shapes)."""
from __future__ import annotations

import pytest

from vkc.modeltrace.records import StepSpec, TraceOptions

DECODE = StepSpec("decode", 64, ctx=4096)
PREFILL = StepSpec("prefill", 4, prompt_len=2048)
DEFAULT_OPTIONS = TraceOptions(tuple(sorted((DECODE, PREFILL), key=lambda s: (s.workload, s.batch, s.ctx, s.prompt_len))))


def _trace(tree, model):
    from vkc.modelcfg import load_model
    from vkc.modeltrace import trace_model

    return trace_model(tree, load_model(model), DEFAULT_OPTIONS)


@pytest.fixture(scope="session")
def llama_trace(vllm_tree):
    return _trace(vllm_tree, "meta-llama/Llama-3.1-8B-Instruct")


@pytest.fixture(scope="session")
def qwen_moe_trace(vllm_tree):
    return _trace(vllm_tree, "Qwen/Qwen3-30B-A3B")
