"""Online paths against a real local hub (tests/hub_server.py): fetch, HF cache, failures."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from hub_server import commit_for, hub_server
from vkc.errors import ModelError
from vkc.modelcfg import load_model

DATA = Path(__file__).resolve().parents[1] / "data" / "modelcfg"
TINY = "vkc-test/tiny-llama"


def _get_paths(hub):
    return [p for m, p in hub.requests if m == "GET"]


def test_unbundled_model_through_local_hub(hub, hf_home):
    cfg = load_model(TINY, endpoint=hub.endpoint)
    assert cfg.origin == "hub" and cfg.model_id == TINY and cfg.warnings == ()
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim, cfg.hidden_size) == (8, 2, 64, 512)
    assert (cfg.num_hidden_layers, cfg.intermediate_size, cfg.vocab_size) == (4, 1408, 32768)
    assert cfg.dtype == "float16" and cfg.model_type == "mistral" and cfg.sliding_window is None
    assert cfg.sources == (f"https://huggingface.co/{TINY}/blob/main/config.json",
                           f"{hub.endpoint}/{TINY}/resolve/{commit_for(TINY)}/config.json")
    assert _get_paths(hub) == [f"/{TINY}/resolve/main/config.json"]
    # the download landed in this test's HF cache, not the user's
    assert (hf_home / "hub" / "models--vkc-test--tiny-llama" / "refs" / "main").read_text() == commit_for(TINY)


def test_hf_endpoint_env_read_at_call_time(hub, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint + "/")
    assert load_model(TINY).origin == "hub"
    assert hub.requests


def test_hf_hub_cache_env_read_at_call_time(hub, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))
    load_model(TINY, endpoint=hub.endpoint)
    assert (tmp_path / "elsewhere" / "models--vkc-test--tiny-llama").is_dir()


def test_offline_uses_hf_cache(hub, monkeypatch):
    online = load_model(TINY, endpoint=hub.endpoint)
    seen = list(hub.requests)
    cached = load_model(TINY, endpoint=hub.endpoint, offline=True)
    assert hub.requests == seen  # no network when offline
    assert cached.origin == "hub" and cached.sources == online.sources and cached.warnings == ()
    assert cached == online
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_model(TINY, endpoint=hub.endpoint) == online
    assert hub.requests == seen


def test_cache_is_per_test(hub):
    with pytest.raises(ModelError):  # the previous test's cache is not visible here
        load_model(TINY, endpoint=hub.endpoint, offline=True)


def test_hub_down_falls_back_to_cache(hub, dead_endpoint):
    load_model(TINY, endpoint=hub.endpoint)
    start = time.monotonic()
    cfg = load_model(TINY, endpoint=dead_endpoint)
    assert time.monotonic() - start < 5
    assert cfg.origin == "hub" and cfg.hidden_size == 512
    assert len(cfg.warnings) == 1 and "unreachable" in cfg.warnings[0] and "HF cache" in cfg.warnings[0]


def test_hub_wins_over_bundled_snapshot(tmp_path):
    snap = json.loads((Path(__file__).resolve().parents[2] / "src/vkc/modelcfg/snapshots"
                       / "openai__gpt-oss-20b.json").read_text())["config"]
    snap["num_hidden_layers"] = 4
    snap["layer_types"] = snap["layer_types"][:4]
    with hub_server(files={"openai/gpt-oss-20b": {"config.json": json.dumps(snap)}}) as hub:
        cfg = load_model("openai/gpt-oss-20b", endpoint=hub.endpoint)
    assert cfg.origin == "hub" and cfg.num_hidden_layers == 4 and len(cfg.layer_types) == 4
    assert not any("bundled snapshot" in w for w in cfg.warnings)


def test_unreachable_hub_without_snapshot_is_quick_error(dead_endpoint):
    start = time.monotonic()
    with pytest.raises(ModelError) as info:
        load_model(TINY, endpoint=dead_endpoint)
    assert time.monotonic() - start < 5
    assert "unreachable" in info.value.message and "\n" not in info.value.message
    assert info.value.hint


def test_silent_hub_times_out_fast(monkeypatch):
    """A hub that accepts connections but never answers: HF_HUB_ETAG_TIMEOUT (read per call) bounds the wait."""
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
        start = time.monotonic()
        cfg = load_model("mistralai/Mistral-7B-Instruct-v0.3", endpoint=endpoint)
        took = time.monotonic() - start
    assert cfg.origin == "snapshot" and "unreachable" in cfg.warnings[0]
    assert 0.9 < took < 4


def test_unreachable_hub_with_snapshot_warns(dead_endpoint):
    cfg = load_model("openai/gpt-oss-120b", endpoint=dead_endpoint)
    assert cfg.origin == "snapshot" and cfg.head_dim == 64
    assert "bundled snapshot" in cfg.warnings[0] and "unreachable" in cfg.warnings[0]


def test_gated_repo_falls_back_to_snapshot_or_fails():
    files = {"meta-llama/Llama-3.1-8B-Instruct": {"config.json": "{}"}, "vkc-test/gated": {"config.json": "{}"}}
    with hub_server(files=files, gated=list(files)) as hub:
        cfg = load_model("meta-llama/Llama-3.1-8B-Instruct", endpoint=hub.endpoint)
        assert cfg.origin == "snapshot" and "gated" in cfg.warnings[0]
        with pytest.raises(ModelError) as info:
            load_model("vkc-test/gated", endpoint=hub.endpoint)
    assert "gated" in info.value.message and "HF_TOKEN" in info.value.hint


@pytest.mark.parametrize("repo, words", [
    ("vkc-test/does-not-exist", ("not found",)),
    ("vkc-test/no-config", ("no config.json",)),
])
def test_hub_lookup_errors(hub, repo, words):
    with pytest.raises(ModelError) as info:
        load_model(repo, endpoint=hub.endpoint)
    assert all(w in info.value.message for w in words), info.value.message
    assert "\n" not in info.value.message


@pytest.mark.parametrize("repo, words", [
    ("vkc-test/malformed", ("malformed config.json", "line")),
    ("vkc-test/not-object", ("not a JSON object",)),
    ("vkc-test/missing-keys", ("essential keys", "num_attention_heads", "num_hidden_layers")),
    ("vkc-test/bad-gqa", ("12", "not a multiple of", "5")),
])
def test_bad_configs_through_hub(hub, repo, words):
    with pytest.raises(ModelError) as info:
        load_model(repo, endpoint=hub.endpoint)
    assert all(w in info.value.message for w in words), info.value.message
    assert "\n" not in info.value.message and info.value.hint
