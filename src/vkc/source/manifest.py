"""The unpacked sdist's manifest: the tarball's member list and sizes, checked on use.

``<cache>/vllm-<version>/.vkc-manifest.json`` holds ``{"files": {relative path: size}}`` for
every regular file the archive unpacked (paths relative to the tree root ``src/``), written
at unpack time from the tar headers.  :func:`damage` stats each file (a few thousand
``os.stat`` calls, milliseconds) and names the first missing or resized one; the caller
then unpacks again from the cached archive ``<cache>/vllm-<version>.tar.gz``.
"""
from __future__ import annotations

import json
import os
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST", "NO_MANIFEST", "damage", "read_marker", "tar_manifest"]

MANIFEST = ".vkc-manifest.json"


def tar_manifest(archive: Path) -> dict[str, int]:
    """Regular-file members (path below the archive's top folder -> size)."""
    files: dict[str, int] = {}
    with tarfile.open(archive, "r:gz") as tf:
        for m in tf.getmembers():
            if m.isreg():
                parts = Path(m.name).parts[1:]
                if parts:
                    files["/".join(parts)] = m.size
    return dict(sorted(files.items()))


def read_marker(path: Path) -> dict[str, Any] | None:
    """The completion marker's JSON object (url, sha256, version), or None when it is
    missing, cut short or the wrong shape."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in ("url", "sha256")):
        return None
    return meta


NO_MANIFEST = "it has no manifest (unpacked by a vkc older than manifests)"


def damage(final: Path) -> str | None:
    """Why the unpacked tree under ``final`` does not match its manifest (None: it does).
    A tree that predates manifests gives :data:`NO_MANIFEST`: the caller checks it by unpacking
    the kept archive again (and uses it unchecked, saying so, only when the archive is gone)."""
    path = final / MANIFEST
    if not path.exists():
        return NO_MANIFEST
    try:
        files = json.loads(path.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "its manifest is unreadable"
    bad = _malformed(files)
    if bad:
        return f"its manifest is malformed ({bad})"
    root = final / "src"
    for rel, size in files.items():
        try:
            st = os.stat(root / rel)
        except OSError:
            return f"{rel} is missing"
        if st.st_size != size:
            return f"{rel} has {st.st_size} bytes, the sdist {size}"
    return None


def _malformed(files: object) -> str:
    """Why ``files`` is not a manifest vkc wrote ("" when it is one): a non-empty object of relative
    paths inside the tree to non-negative integer sizes (an empty or wrong-shaped one would vouch
    for any tree, and a path outside it is not the tree's)."""
    if not isinstance(files, dict) or not files:
        return "no files listed" if isinstance(files, dict) else "not an object of files"
    for rel, size in files.items():
        parts = Path(rel).parts if isinstance(rel, str) else ()
        if not parts or Path(rel).is_absolute() or ".." in parts or "\0" in rel:
            return f"{rel!r} is not a path inside the tree"
        if type(size) is not int or size < 0:
            return f"the size of {rel} is {size!r}"
    return ""
