"""Fixtures of the wrapper-compiled tests: the recorded op calls (``data/op_calls.json``, made by
``make_fixture.py`` from three bundled models' traces), served through the shared trace session."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.modeltrace.records import ModelTrace, trace_from_json

DATA = Path(__file__).resolve().parent / "data" / "op_calls.json"


@pytest.fixture(scope="session")
def traces() -> dict[str, ModelTrace]:
    return {m: trace_from_json(d) for m, d in json.loads(DATA.read_text(encoding="utf-8")).items()}


@pytest.fixture
def traced(monkeypatch, traces):
    """Model tracing on, every model's trace served from the recorded fixture."""
    monkeypatch.setenv("VKC_MODEL_TRACE", "1")
    from vkc.invoke.triton.modeltraced import session
    monkeypatch.setattr(session, "model_trace_for", lambda tree, model: traces[model.model_id])
    return traces


@pytest.fixture(scope="session")
def kernels(vllm_tree):
    from vkc.index.cuda_scan import scan_cuda
    return {e.qualified: e for e in scan_cuda(vllm_tree)}


@pytest.fixture(scope="session")
def extract(vllm_tree, kernels):
    from vkc.extract.cuda import extract_cuda
    cache: dict = {}

    def get(qualified: str):
        if qualified not in cache:
            cache[qualified] = extract_cuda(vllm_tree, kernels[qualified])
        return cache[qualified]
    return get
