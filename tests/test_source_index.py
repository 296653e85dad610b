"""The package index is found the way pip finds it (no index host is named by vkc)."""
from __future__ import annotations

from vkc.source import fetch


def test_index_from_pip_config_file(tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:9/simple/\n")
    for var in ("VKC_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    assert fetch._index_url() == "http://127.0.0.1:9/simple"


def test_env_wins_over_pip_config(tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = http://127.0.0.1:9/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("VKC_INDEX_URL", "http://127.0.0.1:8/x/")
    assert fetch._index_url() == "http://127.0.0.1:8/x"


def test_default_is_pips_own(monkeypatch, tmp_path):
    for var in ("VKC_INDEX_URL", "PIP_INDEX_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "absent.conf"))
    monkeypatch.setattr(fetch, "_pip_config_index", lambda: None)
    from pip._internal.models.index import PyPI
    assert fetch._index_url() == PyPI.simple_url.rstrip("/")
