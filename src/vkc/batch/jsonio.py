"""Atomic JSON result files (``collect_results.json``, ``verify_results.json``)."""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from vkc.errors import WriteError


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as indented JSON via a temp file + ``os.replace`` (readers never see half a file)."""
    folder = os.path.dirname(path) or "."
    data = (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise WriteError(f"cannot write {path} ({exc.strerror or exc})", hint="check the output folder") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
