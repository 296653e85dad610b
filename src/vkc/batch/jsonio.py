"""Atomic JSON result files (``collect_results.json``, ``verify_results.json``, ...)."""
from __future__ import annotations

from typing import Any

from vkc.atomic import json_text, replace_file
from vkc.errors import WriteError


def write_json_atomic(path: str, obj: Any, *, sort_keys: bool = False) -> None:
    """Write ``obj`` as indented JSON via a temp file + ``os.replace`` (readers never see half a file)."""
    try:
        replace_file(path, json_text(obj, sort_keys=sort_keys))
    except OSError as exc:
        raise WriteError(f"cannot write {path} ({exc.strerror or exc})", hint="check the output folder") from None
