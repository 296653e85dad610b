"""Frozen records of the test-trace stage (imports only the model trace's records).

:class:`VllmTest` is one test function of the tree's ``tests/**`` (its parametrize
argument names and the source text of their values, its fixtures, the wrappers it calls);
:class:`Reach` says that a test calls the wrapper that launches a kernel; :class:`ReachIndex` is
the static index of the whole tree; :class:`Capture` is what the worker recorded for one
(test, parameters, kernel): the launch, the base buffers of its tensor arguments (with the actual
contents of small integer ones) or why nothing was captured.  :class:`OpCallCapture` is the CUDA
half's answer: one compiled op call a test made, as a model trace's op event, with the contents of
the integer storages the test built.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import TracedEvent, event_from_worker, event_to_json

__all__ = ["MODES", "Capture", "OpCallCapture", "Reach", "ReachIndex", "VllmTest"]

MODES = ("test-traced", "vllm-sized")


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
    """``test`` calls ``wrapper`` (``module:qualname``), which launches ``kernel`` (``module:qualname``).

    The CUDA half (``op`` set): ``test`` reaches the compiled op ``op`` (``"_C::rms_norm"``), which
    launches the CUDA ``kernel`` (``"csrc/layernorm_kernels.cu:rms_norm_kernel"``); ``wrapper`` says
    how: ``"torch.ops._C.rms_norm"`` or the ``vllm._custom_ops`` function (``"vllm._custom_ops:rms_norm"``).
    """

    kernel: str
    wrapper: str
    test: VllmTest
    via: str | None = None                       # a helper of the test file the call sits in
    op: str | None = None                        # CUDA half: the op the test reaches


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
    op_call: Mapping[str, Any] | None = None     # an op job's call: {"event": worker event, "contents": {sid: runs}}

    def to_json(self) -> dict[str, Any]:
        out = {"ok": self.ok, "test_id": self.test_id, "kernel": self.kernel, "mapped": dict(self.mapped),
               "params": dict(self.params), "launch": dict(self.launch) if self.launch is not None else None,
               "buffers": {k: dict(v) for k, v in sorted(self.buffers.items())}, "reason": self.reason,
               "category": self.category, "attempts": list(self.attempts), "versions": dict(self.versions),
               "stubs": list(self.stubs)}
        if self.op_call is not None:
            out["op_call"] = dict(self.op_call)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Capture:
        return cls(ok=bool(d["ok"]), test_id=str(d["test_id"]), kernel=str(d["kernel"]),
                   mapped=dict(d.get("mapped") or {}), params=dict(d.get("params") or {}),
                   launch=d.get("launch"), buffers=dict(d.get("buffers") or {}), reason=d.get("reason"),
                   category=d.get("category"), attempts=tuple(d.get("attempts") or ()),
                   versions=dict(d.get("versions") or {}), stubs=tuple(d.get("stubs") or ()),
                   op_call=d.get("op_call"))


@dataclass(frozen=True)
class OpCallCapture:
    """One compiled op call inside a vLLM test, for the CUDA ``kernel`` the op launches.

    ``event``: a model trace's event of kind ``"op"`` (``name`` ``"_C::rms_norm"``; ``args`` by the
    op schema's names, tensors as :class:`~vkc.modeltrace.records.TensorArg` whose ``base`` is a
    storage id ``s0``, ``s1``, ... and whose ``producer`` is ``"test"`` (values the test made),
    ``"uninit"`` (``torch.empty``, never written) or ``"noop:<op>"`` (an earlier compiled op or Triton
    launch, recorded and not run, took or made it); ``extra``: ``schema``, ``overload``, ``written``).
    ``contents``: storage id -> the whole storage's values, for the ``test``-made integer storages of
    at most ``MAX_VALUES`` elements.  ``mode``: ``test-traced`` when a size parameter of the test was
    mapped from the model (the Triton half's rule), else ``vllm-sized``; ``source``:
    ``"<mode>: <test id> (...)"``.  ``launches``: whether vkc's dispatch rules say the call launches
    ``kernel`` (None: no rule for the op).
    """

    kernel: str                                  # "csrc/layernorm_kernels.cu:rms_norm_kernel"
    event: TracedEvent
    contents: Mapping[str, Contents]
    source: str
    mode: str                                    # one of MODES
    test_id: str
    mapped: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    launches: bool | None = None

    @property
    def op(self) -> str:
        return self.event.name

    @property
    def provenance_source(self) -> str:
        """``source`` without its ``"<mode>: "`` prefix (what a Provenance's ``source`` holds)."""
        return self.source.removeprefix(f"{self.mode}: ")

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.kernel, "event": event_to_json(self.event),
                "contents": {k: [list(r) for r in c.runs] for k, c in sorted(self.contents.items())},
                "source": self.source, "mode": self.mode, "test_id": self.test_id, "mapped": dict(self.mapped),
                "params": dict(self.params), "launches": self.launches}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> OpCallCapture:
        return cls(kernel=str(d["kernel"]), event=event_from_worker(d["event"]),
                   contents={k: Contents(tuple((v, int(n)) for v, n in runs)) for k, runs in d["contents"].items()},
                   source=str(d["source"]), mode=str(d["mode"]), test_id=str(d["test_id"]),
                   mapped=dict(d.get("mapped") or {}), params=dict(d.get("params") or {}), launches=d.get("launches"))
