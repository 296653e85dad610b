"""The on-disk index cache: one JSON file per source tree state.

Location: ``vkc.source.cache_dir() / "index" / <key>.json``.  The key is the
sha256 of (vkc version, index format version, digest of the source files of the
index package and of ``vkc.cxx``, tree root, and the sdist's sha256 when the tree came from one,
else a fingerprint of (relative path, size, mtime_ns) of every ``.py`` under
``vllm/`` and every file under ``csrc/``).  Files are written atomically
(temporary file + ``os.replace``); an unreadable or corrupt file is ignored and
rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import vkc
from vkc.atomic import store_cache
from vkc.index.serial import entry_from_dict, entry_to_dict
from vkc.records import KernelIndex, SourceTree

FORMAT_VERSION = 2      # 2: platform-only modules' kernels are rocm_only, with platform_note


def _code_digest() -> str:
    """The source of the index package and of the C++ front end it scans with (``vkc.cxx``):
    a scanner change invalidates old caches."""
    h = hashlib.sha256()
    pkg = Path(__file__).parent.parent
    for base in (pkg / "index", pkg / "cxx"):
        for p in sorted(base.rglob("*")):
            if p.is_file() and p.suffix in (".py", ".scm", ".json") and "__pycache__" not in p.parts:
                h.update(p.relative_to(pkg).as_posix().encode() + b"\0")
                h.update(p.read_bytes())
    return h.hexdigest()


def tree_fingerprint(root: Path) -> str:
    """sha256 over (path, size, mtime_ns) of vllm/**/*.py and csrc/**."""
    h = hashlib.sha256()
    for sub, only_py in (("vllm", True), ("csrc", False)):
        base = root / sub
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                if only_py and not fn.endswith(".py"):
                    continue
                full = os.path.join(dirpath, fn)
                try:
                    st = os.stat(full)
                except OSError:
                    continue
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def cache_key(tree: SourceTree) -> str:
    parts = [vkc.__version__, str(FORMAT_VERSION), _code_digest(), str(Path(tree.root).resolve()),
             f"sdist:{tree.sha256}" if tree.sha256 else f"files:{tree_fingerprint(Path(tree.root))}"]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cache_path(tree: SourceTree, key: str | None = None) -> Path:
    from vkc.source import cache_dir
    return cache_dir() / "index" / f"{key or cache_key(tree)}.json"


def load(tree: SourceTree, key: str | None = None) -> KernelIndex | None:
    """The cached index of ``tree``, or None (missing, stale or corrupt)."""
    key = key or cache_key(tree)
    try:
        data = json.loads(cache_path(tree, key).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT_VERSION or data.get("key") != key:
            return None
        kernels = tuple(entry_from_dict(d) for d in data["kernels"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return KernelIndex(tree=tree, kernels=kernels)


def save(index: KernelIndex, key: str | None = None) -> Path | None:
    """Write ``index`` atomically; returns the path, or None if it could not be written."""
    key = key or cache_key(index.tree)
    path = cache_path(index.tree, key)
    data = {"format": FORMAT_VERSION, "key": key, "vkc": vkc.__version__,
            "root": str(index.tree.root), "version": index.tree.version,
            "kernels": [entry_to_dict(k) for k in index.kernels]}
    return path if store_cache(path, json.dumps(data, separators=(",", ":"))) else None
