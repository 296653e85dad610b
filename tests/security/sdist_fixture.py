"""A fake vLLM sdist for the source-cache tests: ``vllm-<version>/<name>`` members, and its sha256."""
from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Mapping
from pathlib import Path


def write_sdist(path: Path, version: str, files: Mapping[str, bytes]) -> str:
    """Write ``files`` as the sdist ``path`` (gzip tar under ``vllm-<version>/``); return its sha256."""
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(f"vllm-{version}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()
