"""Shared fixtures of the reach-source tests."""
from __future__ import annotations

import dataclasses
import sys
import types

import pytest


@dataclasses.dataclass
class FakeEngineArgs:
    """The fields ``vkc.modeltrace.startup.engine_config`` sets, as vLLM's ``EngineArgs`` dataclass has them."""
    model: str = ""
    skip_tokenizer_init: bool = False
    enforce_eager: bool = False
    load_format: str = ""
    block_size: int = 16
    max_model_len: int | None = None
    kv_cache_dtype: str = "auto"
    max_num_seqs: int = 0
    max_num_batched_tokens: int = 0
    gdn_prefill_backend: str | None = None
    kda_prefill_backend: str | None = None
    linear_backend: str = "auto"
    dtype: str = "auto"

    def create_engine_config(self) -> FakeEngineArgs:
        return self


@pytest.fixture
def fake_engine_args(monkeypatch):
    """vLLM's ``EngineArgs`` (and the registry ``engine_config`` touches) replaced by :class:`FakeEngineArgs`;
    yields the worker options ``engine_config`` takes."""
    fake = {"vllm.engine.arg_utils": types.SimpleNamespace(EngineArgs=FakeEngineArgs),
            "vllm.model_executor.models": types.SimpleNamespace(registry=types.SimpleNamespace())}
    for name, mod in fake.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return {"block_size": 16, "max_model_len": None, "kv_cache_dtype": "auto", "max_batch": 4, "max_tokens": 64}
