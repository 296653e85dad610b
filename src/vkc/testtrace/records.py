"""Frozen records of the test-trace stage (leaf module: imports nothing of vkc).

:class:`VllmTest` is one test function of the tree's ``tests/kernels/**`` (its parametrize
argument names and the source text of their values, its fixtures, the wrappers it calls);
:class:`Reach` says that a test calls the wrapper that launches a kernel; :class:`ReachIndex` is
the static index of the whole tree; :class:`Capture` is what the worker recorded for one
(test, parameters, kernel): the launch, the base buffers of its tensor arguments (with the actual
contents of small integer ones) or why nothing was captured.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Capture", "Reach", "ReachIndex", "VllmTest"]


@dataclass(frozen=True)
class VllmTest:
    file: str                                    # "tests/kernels/mamba/test_causal_conv1d.py"
    function: str                                # "test_causal_conv1d_update"
    line: int
    params: tuple[tuple[str, tuple[str, ...]], ...] = ()   # parametrize argnames -> value texts (first decorator first)
    fixtures: tuple[str, ...] = ()               # arguments no parametrize covers

    @property
    def module(self) -> str:
        return self.file.removesuffix(".py").replace("/", ".")

    @property
    def node_id(self) -> str:
        return f"{self.file}::{self.function}"


@dataclass(frozen=True)
class Reach:
    """``test`` calls ``wrapper`` (``module:qualname``), which launches ``kernel`` (``module:qualname``)."""

    kernel: str
    wrapper: str
    test: VllmTest
    via: str | None = None                       # a helper of the test file the call sits in


@dataclass(frozen=True)
class ReachIndex:
    tree_sha256: str | None
    tests: int                                   # test functions scanned
    files: int                                   # test files scanned
    reaches: tuple[Reach, ...]                   # sorted by kernel, then test id

    def for_kernel(self, kernel: str) -> tuple[Reach, ...]:
        return tuple(r for r in self.reaches if r.kernel == kernel)

    @property
    def kernels(self) -> tuple[str, ...]:
        return tuple(sorted({r.kernel for r in self.reaches}))


@dataclass(frozen=True)
class Capture:
    """One worker run of a test for one kernel.  ``ok``: the target kernel's launch was recorded.

    ``mapped``: the parameters whose values came from the model (name -> value text); ``params``:
    every parameter value the test ran with (name -> text); ``launch``: the tracer's launch record
    (grid, constexprs, options, args, signature, ...); ``buffers``: base name -> {dtype, numel,
    itemsize, values (integer contents, or None), earlier (kernels launched earlier that took it)};
    ``reason``: why not (``ok`` False), one line; ``attempts``: every try's outcome, in order.
    """

    ok: bool
    test_id: str                                 # "tests/...py::test_x[a=1-b=2]"
    kernel: str
    mapped: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    launch: Mapping[str, Any] | None = None
    buffers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    reason: str | None = None
    category: str | None = None                  # a short failure class for the bench ("fixture", "import", ...)
    attempts: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    stubs: tuple[str, ...] = ()                  # missing packages stood in for in the worker process (not rendered)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "test_id": self.test_id, "kernel": self.kernel, "mapped": dict(self.mapped),
                "params": dict(self.params), "launch": dict(self.launch) if self.launch is not None else None,
                "buffers": {k: dict(v) for k, v in sorted(self.buffers.items())}, "reason": self.reason,
                "category": self.category, "attempts": list(self.attempts), "versions": dict(self.versions),
                "stubs": list(self.stubs)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Capture:
        return cls(ok=bool(d["ok"]), test_id=str(d["test_id"]), kernel=str(d["kernel"]),
                   mapped=dict(d.get("mapped") or {}), params=dict(d.get("params") or {}),
                   launch=d.get("launch"), buffers=dict(d.get("buffers") or {}), reason=d.get("reason"),
                   category=d.get("category"), attempts=tuple(d.get("attempts") or ()),
                   versions=dict(d.get("versions") or {}), stubs=tuple(d.get("stubs") or ()))
