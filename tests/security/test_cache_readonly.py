"""A read-only or damaged vLLM source cache (issue 15, "Medium" and "Low"): one clear line and the
documented exit code (3), never a traceback, never exit 70, never a write into the cache.

The machine runs the tests as root, for whom ``chmod`` does not make a folder read-only, so the
cache is made read-only by a bind mount: vkc runs under ``bwrap --bind / / --ro-bind CACHE CACHE``
(bubblewrap, as ``vkc verify --run``'s sandbox uses; no privileges beyond an unprivileged user
namespace).  The tests skip, saying why, when bwrap is missing or cannot make such a mount; a probe
checks that a write into the cache really fails inside the sandbox, and each test also compares the
cache's files before and after.  Also here, in process: corrupt archives and wrong-shaped manifests.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sdist_fixture import write_sdist

from vkc.errors import SourceError
from vkc.source import fetch
from vkc.source.manifest import MANIFEST

VERSION = "9.9.7"
KERNEL = b'''import triton
import triton.language as tl


@triton.jit
def add_one_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=m) + 1, mask=m)


def add_one(x, y):
    add_one_kernel[(triton.cdiv(x.numel(), 128),)](x, y, x.numel(), BLOCK=128)
'''
FILES = {"vllm/__init__.py": b"__version__ = '9.9.7'\n", "vllm/ops/k.py": KERNEL,
         "csrc/k.cu": b"__global__ void fill_one(float* x) { x[0] = 1.0f; }\n", "PKG-INFO": b"Version: 9.9.7\n"}


def _tarball(path: Path, files: dict[str, bytes] = FILES) -> str:
    return write_sdist(path, VERSION, files)


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fake package index serving ``served`` (the fixture tarball unless a test swaps it)."""
    src = tmp_path / "served.tar.gz"
    state = {"downloads": 0, "served": src, "sha": _tarball(src)}

    def download(url: str, dest: Path, timeout: float = 60.0) -> str:
        state["downloads"] += 1
        dest.write_bytes(Path(state["served"]).read_bytes())
        return hashlib.sha256(dest.read_bytes()).hexdigest()

    monkeypatch.setenv("VKC_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("VKC_OFFLINE", raising=False)
    monkeypatch.setattr(fetch, "find_sdist", lambda version: (f"https://index.invalid/vllm-{version}.tar.gz",
                                                              state["sha"]))
    monkeypatch.setattr(fetch, "_download", download)
    return state


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


def _bwrap_ro_works(tmp: Path) -> str:
    """"" when ``bwrap --ro-bind`` makes a folder unwritable for us, else why not."""
    if shutil.which("bwrap") is None:
        return "bwrap (Debian package bubblewrap) is not installed"
    probe = tmp / "probe"
    probe.mkdir()
    p = subprocess.run(["bwrap", "--bind", "/", "/", "--ro-bind", str(probe), str(probe), "--dev", "/dev",
                        "--proc", "/proc", "sh", "-c", f"touch {probe}/x"], capture_output=True, text=True)
    if "x" in os.listdir(probe):
        return "bwrap --ro-bind did not stop a write"
    if "Read-only file system" not in p.stderr:
        return f"bwrap cannot make a read-only bind mount here: {p.stderr.strip()[:200]}"
    return ""


def _vkc_ro(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``vkc ARGS`` with ``cache`` as VKC_CACHE_DIR, mounted read-only."""
    env = {**os.environ, "VKC_CACHE_DIR": str(cache), "VKC_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "VKC_MODEL_TRACE": "0", "VKC_TEST_TRACE": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("VKC_DEBUG", None)
    return subprocess.run(["bwrap", "--bind", "/", "/", "--ro-bind", str(cache), str(cache), "--dev", "/dev",
                           "--proc", "/proc", sys.executable, "-m", "vkc", *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def ro(tmp_path: Path) -> None:
    why = _bwrap_ro_works(tmp_path)
    if why:
        pytest.skip(f"cannot make a read-only cache without privileges: {why}")


def _one_error_line(p: subprocess.CompletedProcess[str], code: int) -> str:
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert (p.returncode, len(lines)) == (code, 1), p.stderr
    assert lines[0].startswith("vkc: error: ") and p.stdout == ""
    return lines[0]


def test_empty_read_only_cache_is_one_line_exit_3(tmp_path: Path, ro: None) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    line = _one_error_line(_vkc_ro(cache, "list"), 3)
    assert str(cache) in line and "Read-only file system" in line and "VKC_CACHE_DIR" in line
    assert list(cache.iterdir()) == []


def test_damaged_read_only_cache_is_one_line_exit_3(tmp_path: Path, index: dict, ro: None) -> None:
    tree = fetch.resolve_source(version=VERSION)
    (tree.root / "csrc" / "k.cu").unlink()
    cache = tmp_path / "cache"
    before = _snapshot(cache)
    line = _one_error_line(_vkc_ro(cache, "list", "--vllm-version", VERSION), 3)
    assert "csrc/k.cu is missing" in line and "cannot be unpacked again" in line and "writable" in line
    assert _snapshot(cache) == before


def test_read_only_cache_that_checks_is_used(tmp_path: Path, index: dict, ro: None) -> None:
    """A sound read-only cache works: the kernel index and extraction caches that cannot be written
    cost only speed (nothing on stderr), and the artifact goes to --out, outside the cache."""
    fetch.resolve_source(version=VERSION)
    cache = tmp_path / "cache"
    before = _snapshot(cache)
    p = _vkc_ro(cache, "list", "--vllm-version", VERSION)
    assert (p.returncode, p.stderr) == (0, "") and "add_one_kernel" in p.stdout and "fill_one" in p.stdout
    out = tmp_path / "out"
    p = _vkc_ro(cache, "collect", "fill_one", "--vllm-version", VERSION, "--out", str(out))
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr
    assert p.stdout.startswith(f"WROTE {out}/fill_one.json ") and len(p.stdout.splitlines()) == 1
    assert json.loads((out / "fill_one.json").read_text())["name"] == "fill_one"
    assert _snapshot(cache) == before


def test_truncated_archive_is_fetched_again(tmp_path: Path, index: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tree is damaged and the archive it would heal from is cut short: online it is downloaded
    again; offline the error says how to fix it."""
    tree = fetch.resolve_source(version=VERSION)
    archive = tmp_path / "cache" / f"vllm-{VERSION}.tar.gz"
    archive.write_bytes(archive.read_bytes()[:100])
    (tree.root / "vllm" / "ops" / "k.py").unlink()
    monkeypatch.setenv("VKC_OFFLINE", "1")
    with pytest.raises(SourceError) as err:
        fetch.resolve_source(version=VERSION)
    assert err.value.exit_code == 3 and "delete" in (err.value.hint or "")
    monkeypatch.delenv("VKC_OFFLINE")
    healed = fetch.resolve_source(version=VERSION)
    assert (healed.root / "vllm" / "ops" / "k.py").read_bytes() == KERNEL and index["downloads"] == 2


@pytest.mark.parametrize("served", ["truncated", "garbage"])
def test_corrupt_download_without_a_hash_is_refused_and_removed(tmp_path: Path, index: dict, served: str) -> None:
    """An index that gives no sha256 served a corrupt archive: exit 3 with a hint, the archive is
    removed, and the next run downloads it again (no exit 70, no tarfile traceback)."""
    good = Path(index["served"]).read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(good[: len(good) // 2] if served == "truncated" else b"<html>not a tarball</html>\n")
    index.update(served=bad, sha=None)
    with pytest.raises(SourceError) as err:
        fetch.resolve_source(version=VERSION)
    assert err.value.exit_code == 3 and "corrupt" in str(err.value) and "retry" in (err.value.hint or "")
    assert not (tmp_path / "cache" / f"vllm-{VERSION}.tar.gz").exists()
    assert not (tmp_path / "cache" / f"vllm-{VERSION}").exists()
    index.update(served=tmp_path / "served.tar.gz")
    assert (fetch.resolve_source(version=VERSION).root / "csrc" / "k.cu").is_file() and index["downloads"] == 2


@pytest.mark.parametrize("manifest", [
    {"files": {}}, {"files": []}, {"files": {"../../../etc/hostname": 1}}, {"files": {"/etc/hostname": 1}},
    {"files": {"vllm/__init__.py": "22"}}, {"files": {"vllm/__init__.py": True}},
    {"files": {"vllm/__init__.py": -1}}, [1, 2], {"files": {"": 0}},
])
def test_wrong_shaped_manifest_heals(tmp_path: Path, index: dict, manifest: object,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A manifest that parses but is not one vkc wrote (empty, wrong types, paths outside the tree)
    must not vouch for a tree with a file missing: the tree is unpacked again from the archive."""
    tree = fetch.resolve_source(version=VERSION)
    (tree.root / "vllm" / "ops" / "k.py").unlink()
    (tmp_path / "cache" / f"vllm-{VERSION}" / MANIFEST).write_text(json.dumps(manifest))
    again = fetch.resolve_source(version=VERSION)
    assert (again.root / "vllm" / "ops" / "k.py").read_bytes() == KERNEL and index["downloads"] == 1
    assert "damaged" in capsys.readouterr().err
