"""The torch / Triton versions a vLLM release pins for CUDA (issue 14, toolchain skew).

Read from the tree: ``requirements/cuda.txt`` (the runtime pin, ``torch==X``), else ``pyproject.toml``'s
build requirements (``"torch == X"``).  vLLM's CUDA requirements pin Triton only through torch (0.11.0 -
0.33.0 list no ``triton==`` line there); a ``triton==`` line, where present, is read too.  A line with a
platform marker for another platform (``; platform_machine == ...``) is still a pin for CUDA builds, so
markers are dropped; a ``+local`` suffix (ROCm builds) is not a CUDA pin and is skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pins", "release_pins"]

_REQ = re.compile(r"^\s*\"?(torch|triton)\s*==\s*([0-9][0-9A-Za-z.]*)(\+\S+)?\"?", re.M)


@dataclass(frozen=True)
class Pins:
    torch: str | None
    triton: str | None
    source: str           # the file the pins were read from ("" when none)

    def describe(self) -> str:
        if not self.torch and not self.triton:
            return "no torch/Triton pin found"
        tri = self.triton or (f"via torch {self.torch}" if self.torch else "?")
        return f"torch {self.torch or '?'}, Triton {tri} ({self.source})"


def release_pins(root: Path) -> Pins:
    """The pins of the tree at ``root`` (the folder holding ``vllm/`` and ``requirements/``)."""
    for rel in ("requirements/cuda.txt", "pyproject.toml"):
        try:
            text = (root / rel).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found: dict[str, str] = {}
        for name, ver, local in _REQ.findall(text):
            if not local:
                found.setdefault(name, ver)
        if found:
            return Pins(torch=found.get("torch"), triton=found.get("triton"), source=rel)
    return Pins(None, None, "")
