"""Session-scoped invocations (each traces vLLM's wrapper once; traces are also cached on disk)."""
from __future__ import annotations

import pytest

from invoke_triton.fixtures import load_extraction, model

_cache: dict = {}


@pytest.fixture(scope="session")
def invocation(vllm_tree):
    """invocation(kernel_name, model_id, workload) -> (Extraction, Invocation), memoised per session."""
    from vkc.invoke.triton import invoke_triton

    def get(name: str, model_id: str, workload: str | None):
        key = (name, model_id, workload)
        if key not in _cache:
            ex = load_extraction(name)
            cmd = f"vkc {name} --model {model_id}" + (f" --workload {workload}" if workload else "")
            _cache[key] = (ex, invoke_triton(vllm_tree, ex, model(model_id), workload, command=cmd))
        return _cache[key]

    return get


def artifact(ex, inv) -> dict:
    return {"name": ex.facts["name"], "kernel": {"kernel_type": "triton", "source_code": ex.source_code,
                                                  "invocation_example": inv.code}}
