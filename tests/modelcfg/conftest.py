"""Fixtures for vkc.modelcfg tests: an isolated HF cache per test and a local hub server."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # tests/hub_server.py is a plain module next to tests/conftest.py
    sys.path.insert(0, str(TESTS))

from hub_server import HubServer, closed_port_endpoint, hub_server

DATA = TESTS / "data" / "modelcfg"
_HF_VARS = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_ENDPOINT",
            "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_ETAG_TIMEOUT")


@pytest.fixture(autouse=True)
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HF_HOME per test; HF_ENDPOINT points at a closed port so nothing reaches the real hub."""
    for var in _HF_VARS:
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: a test elsewhere in the session may have
    # imported it under the session's offline default (tests/conftest.py), so undo that here
    if "huggingface_hub" in sys.modules:
        import huggingface_hub.constants as hf_constants
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    return home


@pytest.fixture
def hub() -> HubServer:
    """A local hub serving tests/data/modelcfg/hub/<org>/<name>/*."""
    with hub_server(root=DATA / "hub") as server:
        yield server


@pytest.fixture
def dead_endpoint() -> str:
    return closed_port_endpoint()
