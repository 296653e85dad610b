"""Verification results: one CheckResult per rule per artifact."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    artifact: str            # path of the artifact checked
    check: str               # short rule id, e.g. "schema", "no-host-code", "compile", "run"
    ok: bool
    reason: str = ""         # one line; why it failed (or what it measured)
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        status = "ok" if self.ok else "FAIL"
        tail = f": {self.reason}" if self.reason else ""
        return f"{status} {self.artifact} [{self.check}]{tail}"
