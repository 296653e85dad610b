"""One way to replace a file atomically: a temp file in the same folder, fsynced, then
``os.replace`` over the target (readers see the old file or the new one, never half of one).
Leaf module (imports nothing of vkc): artifacts (:mod:`vkc.write.writer`), result files,
reports and caches use it."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def replace_file(path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o644) -> None:
    """Atomically make ``path`` hold ``data``; raises OSError (and leaves no temp file) on failure."""
    path = os.fspath(path)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                   dir=os.path.dirname(path) or ".")
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def json_text(obj: Any, *, sort_keys: bool = False) -> str:
    """Indented JSON with a final newline (the form of every vkc result file)."""
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=sort_keys) + "\n"


def store_cache(path: str | os.PathLike[str], text: str) -> bool:
    """Best-effort cache write (folder created): True if stored; a cache that cannot be
    written only costs speed, so OSError is swallowed."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, text)
        return True
    except OSError:
        return False
