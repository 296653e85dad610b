"""A damaged vLLM source cache heals from the cached archive (issue 15, "Medium"): files
missing or resized in the unpacked tree, a truncated completion marker, a lost archive."""
from __future__ import annotations

from pathlib import Path

import pytest
from sdist_fixture import write_sdist

from vkc.errors import SourceError
from vkc.source import fetch
from vkc.source.manifest import MANIFEST

VERSION = "9.9.9"
FILES = {"vllm/__init__.py": b"__version__ = '9.9.9'\n", "vllm/ops/k.py": b"import triton\n" * 20,
         "csrc/k.cu": b"__global__ void k() {}\n", "PKG-INFO": b"Version: 9.9.9\n"}


def _tarball(path: Path) -> str:
    return write_sdist(path, VERSION, FILES)


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fake package index serving the fixture tarball; counts downloads."""
    src = tmp_path / "served.tar.gz"
    sha = _tarball(src)
    calls = {"downloads": 0}

    def download(url: str, dest: Path, timeout: float = 60.0) -> str:
        calls["downloads"] += 1
        dest.write_bytes(src.read_bytes())
        return sha

    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VKC_OFFLINE", raising=False)
    monkeypatch.setattr(fetch, "find_sdist", lambda version: (f"https://index.invalid/vllm-{version}.tar.gz", sha))
    monkeypatch.setattr(fetch, "_download", download)
    return calls


def _root(tmp_path: Path) -> Path:
    return tmp_path / "cache" / f"vllm-{VERSION}"


def test_first_use_writes_manifest_and_keeps_archive(tmp_path: Path, index: dict) -> None:
    tree = fetch.resolve_source(version=VERSION)
    assert (tree.root / "vllm" / "ops" / "k.py").read_bytes() == FILES["vllm/ops/k.py"]
    assert (_root(tmp_path) / MANIFEST).is_file() and (tmp_path / "cache" / f"vllm-{VERSION}.tar.gz").is_file()
    fetch.resolve_source(version=VERSION)
    assert index["downloads"] == 1


@pytest.mark.parametrize("damage", ["delete", "truncate", "marker", "marker-shape", "manifest"])
def test_damage_heals_from_the_archive(tmp_path: Path, index: dict, damage: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    tree = fetch.resolve_source(version=VERSION)
    victim = tree.root / "vllm" / "ops" / "k.py"
    marker = _root(tmp_path) / ".vkc-complete"
    if damage == "delete":
        victim.unlink()
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:7])
    elif damage == "marker":
        marker.write_text(marker.read_text()[:9])
    elif damage == "marker-shape":
        marker.write_text("[1, 2]")
    else:
        (_root(tmp_path) / MANIFEST).write_text("{")
    again = fetch.resolve_source(version=VERSION)
    assert (again.root / "vllm" / "ops" / "k.py").read_bytes() == FILES["vllm/ops/k.py"]
    assert index["downloads"] == 1                       # healed from the cached archive
    assert "damaged" in capsys.readouterr().err


def test_lost_archive_offline_says_how_to_fix(tmp_path: Path, index: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = fetch.resolve_source(version=VERSION)
    (tmp_path / "cache" / f"vllm-{VERSION}.tar.gz").unlink()
    (tree.root / "csrc" / "k.cu").unlink()
    monkeypatch.setenv("VKC_OFFLINE", "1")
    with pytest.raises(SourceError) as err:
        fetch.resolve_source(version=VERSION)
    assert err.value.exit_code == 3 and "delete" in (err.value.hint or "")
    monkeypatch.delenv("VKC_OFFLINE")
    healed = fetch.resolve_source(version=VERSION)      # online: fetched again
    assert (healed.root / "csrc" / "k.cu").is_file() and index["downloads"] == 2


def test_legacy_cache_without_manifest_is_checked_from_the_archive(tmp_path: Path, index: dict,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A tree unpacked before manifests is not trusted: it is unpacked again from the kept archive
    (no download), which heals it and writes its manifest."""
    tree = fetch.resolve_source(version=VERSION)
    (_root(tmp_path) / MANIFEST).unlink()
    (tree.root / "PKG-INFO").unlink()
    again = fetch.resolve_source(version=VERSION)
    assert (again.root / "PKG-INFO").is_file() and (_root(tmp_path) / MANIFEST).is_file()
    assert index["downloads"] == 1 and "no manifest" in capsys.readouterr().err
    fetch.resolve_source(version=VERSION)
    assert capsys.readouterr().err == ""                 # checked once; quiet from then on


def test_legacy_cache_without_archive(tmp_path: Path, index: dict, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing to check it against: offline it is used and said to be unchecked; online a checked
    copy is fetched (one download) and carries a manifest from then on."""
    tree = fetch.resolve_source(version=VERSION)
    (_root(tmp_path) / MANIFEST).unlink()
    (tmp_path / "cache" / f"vllm-{VERSION}.tar.gz").unlink()
    monkeypatch.setenv("VKC_OFFLINE", "1")
    assert fetch.resolve_source(version=VERSION).root == tree.root and index["downloads"] == 1
    assert "unchecked" in capsys.readouterr().err
    monkeypatch.delenv("VKC_OFFLINE")
    fetch.resolve_source(version=VERSION)
    assert index["downloads"] == 2 and (_root(tmp_path) / MANIFEST).is_file()
