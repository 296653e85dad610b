"""Hub fetches retry transient failures with a short backoff before falling back, and say
which copy they used (issue 15, "Recovery")."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.modelcfg import fetch, load_model


class _Flaky:
    def __init__(self, fails: int, exc: Exception, path: Path | None = None) -> None:
        self.fails, self.exc, self.path, self.calls = fails, exc, path, 0

    def __call__(self, repo_id: str, endpoint: str, cache_dir: str) -> str:
        self.calls += 1
        if self.calls <= self.fails:
            raise self.exc
        assert self.path is not None
        return str(self.path)


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.0)


def test_retry_then_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2}))
    flaky = _Flaky(2, ConnectionError("connection reset"), cfg)
    monkeypatch.setattr(fetch, "_download", flaky)
    model = load_model("org/flaky", offline=False)
    assert flaky.calls == 3 and model.origin == "hub"
    assert any("try 3 of 3" in w for w in model.warnings)


def test_retries_exhausted_fall_back_to_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    flaky = _Flaky(99, ConnectionError("unreachable"))
    monkeypatch.setattr(fetch, "_download", flaky)
    model = load_model("meta-llama/Llama-3.1-8B-Instruct", offline=False)
    assert flaky.calls == 3 and model.origin == "snapshot"
    assert any("bundled snapshot" in w for w in model.warnings)


def test_not_found_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    class RepositoryNotFoundError(Exception):
        pass

    flaky = _Flaky(99, RepositoryNotFoundError("404"))
    monkeypatch.setattr(fetch, "_download", flaky)
    model = load_model("meta-llama/Llama-3.1-8B-Instruct", offline=False)
    assert flaky.calls == 1 and model.origin == "snapshot"


def test_tries_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VKC_HUB_TRIES", "1000")
    assert fetch._tries() == 10
    monkeypatch.setenv("VKC_HUB_TRIES", "x")
    assert fetch._tries() == fetch.DEFAULT_TRIES
