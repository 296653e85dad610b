"""Engine options an older release lacks (0.11.0's EngineArgs has no ``attention_backend``; it reads
``VLLM_ATTENTION_BACKEND``), passed the release's way or named as left to vLLM's default."""
from __future__ import annotations

import dataclasses

from vkc.modeltrace import startup


@dataclasses.dataclass
class EngineArgs011:          # the fields that matter of vllm-0.11.0's vllm/engine/arg_utils.py EngineArgs
    model: str = ""
    enforce_eager: bool = False


@dataclasses.dataclass
class EngineArgs033(EngineArgs011):
    attention_backend: str | None = None
    gdn_prefill_backend: str | None = None


def test_old_release_gets_the_environment_variable_and_a_backend_line(monkeypatch):
    monkeypatch.delenv("VLLM_ATTENTION_BACKEND", raising=False)
    monkeypatch.setattr(startup.S, "backend_lines", [])
    kw = {"model": "m", "enforce_eager": True, "attention_backend": "TRITON_ATTN", "gdn_prefill_backend": "triton"}
    out = startup._release_engine_kwargs(EngineArgs011, kw)
    assert out == {"model": "m", "enforce_eager": True}
    import os
    assert os.environ["VLLM_ATTENTION_BACKEND"] == "TRITON_ATTN"
    assert len(startup.S.backend_lines) == 2
    assert "gdn_prefill_backend=triton not set" in startup.S.backend_lines[1]


def test_a_release_with_the_options_is_passed_them_unchanged(monkeypatch):
    monkeypatch.setattr(startup.S, "backend_lines", [])
    kw = {"model": "m", "attention_backend": "TRITON_ATTN", "gdn_prefill_backend": "triton"}
    assert startup._release_engine_kwargs(EngineArgs033, kw) == kw
    assert startup.S.backend_lines == []
