"""The frozen records of the reference stage: the mapping data and what the stage finds.

A :class:`RefSpec` is one row of the mapping table (:mod:`.table`): which PyTorch computation
vLLM holds for a kernel, how the kernel's arguments become the reference's arguments (Python
expressions over ``a``, the kernel's arguments by parameter name, and ``c``, its constexprs),
which kernel buffers hold the outputs, under which launch values the mapping holds, and where the
tolerance comes from.  A :class:`Reference` is the resolved row: the extracted, self-contained
source and the tolerances; a :class:`ReferenceLookup` is the stage's answer (a reference, or
None with the reason).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

SourceKind = Literal["ir-native", "forward_native", "test-reference"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("ir-native", "forward_native", "test-reference")
# the invocation modes whose tensor arguments are the wrapper's own tensors (exact mapping)
EXACT_MODES: tuple[str, ...] = ("model-traced", "recipe", "test-traced", "vllm-sized")


@dataclass(frozen=True)
class Output:
    """A kernel buffer the check compares: kernel parameter ``param`` against element ``index`` of
    the reference's return value (None: the value itself).  ``poison``: False when the kernel reads
    the buffer too (in place), so it cannot be poisoned before the launch; it is still compared."""

    param: str
    index: int | None = None
    poison: bool = True
    tol: tuple[float, float] | None = None    # this output's own (atol, rtol) from the test, at ``tol_at``
    tol_at: str | None = None
    # CUDA rows: the compared part of the dumped buffer, a Python expression over ``t`` (the buffer after the
    # launch, as the row's ``a`` shows it) and ``v`` (the manifest's values); "" = the whole of ``t``
    view: str = ""


@dataclass(frozen=True)
class RefSpec:
    """One mapping row: kernel -> reference function, argument mapping, outputs, tolerances.

    ``function`` is a top-level function or ``Class.method`` of ``file`` (relative to the tree).
    ``args``: (reference parameter, expression over ``a``/``c``/``ns``) in call order.
    ``requires``: (name, value) pairs every configuration's constexprs/scalars must equal.
    ``requires_tensor``: kernel parameters that must be tensors (not None) in every configuration.
    ``bind``: (name, Python expression) for a vLLM name the reference reaches that cannot be
    extracted (a platform query, a custom op), pinned to the value the launch implies.
    ``tolerance``: (dtype name or "default", atol, rtol) rows stated by the test at ``tolerance_at``
    ("file:line" of each row, checked against the tree); empty: vLLM's per-dtype defaults
    (``vllm/ir/tolerances.py``, with the IR op's own overrides).
    """

    kernel: str
    source: SourceKind
    file: str
    function: str
    args: tuple[tuple[str, str], ...]
    outputs: tuple[Output, ...]
    requires: tuple[tuple[str, Any], ...] = ()
    requires_tensor: tuple[str, ...] = ()
    bind: tuple[tuple[str, str], ...] = ()
    tolerance: tuple[tuple[str, float, float], ...] = ()
    tolerance_at: tuple[str, ...] = ()
    ir_op: str | None = None
    note: str = ""
    # CUDA rows (vkc.reference.cuda_table): the C++ scalar expressions a recipe's host program writes to its dump
    # manifest for ``v`` (``value NAME V``), and the wrapper function the row holds for ("" = any)
    values: tuple[str, ...] = ()
    wrapper: str = ""


@dataclass(frozen=True)
class Tolerance:
    """``atol``/``rtol`` per output dtype name (``default`` for any other), and where from."""

    table: tuple[tuple[str, float, float], ...]
    origin: str

    def for_dtype(self, dtype: str) -> tuple[float, float]:
        for name, atol, rtol in self.table:
            if name == dtype:
                return atol, rtol
        for name, atol, rtol in self.table:
            if name == "default":
                return atol, rtol
        return 1e-5, 1.3e-6

    def to_literal(self) -> dict[str, tuple[float, float]]:
        return {name: (atol, rtol) for name, atol, rtol in self.table}


@dataclass(frozen=True)
class Reference:
    """A resolved reference: ``code`` defines ``entry`` (and its helpers), no vLLM import left."""

    spec: RefSpec
    code: str
    entry: str
    origin: str                 # "file:line" of the reference function
    tolerance: Tolerance
    output_tolerance: tuple[tuple[str, Tolerance], ...]  # per output parameter (the row's, or its own)
    imports: tuple[str, ...]    # the import lines ``code`` needs (torch, math, numpy, ...)
    pieces: tuple[str, ...]     # "name file:line" of every extracted piece, entry last
    stubs: tuple[str, ...] = ()  # vLLM names left as raising stubs (unreached by this launch)

    @property
    def source(self) -> SourceKind:
        return self.spec.source

    def to_json(self) -> dict[str, Any]:
        return {"reference_source": self.spec.source, "reference_origin": self.origin,
                "reference_function": self.spec.function, "reference_tolerance": self.tolerance.to_literal(),
                "reference_tolerance_from": self.tolerance.origin}


@dataclass(frozen=True)
class ReferenceLookup:
    """The stage's answer: ``reference`` or None, and ``reason`` (why none, or which row)."""

    reference: Reference | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        if self.reference is not None:
            return self.reference.to_json()
        return {"reference_source": None, "reference_refused": self.reason}


__all__ = ["EXACT_MODES", "SOURCE_KINDS", "Output", "RefSpec", "Reference", "ReferenceLookup", "SourceKind",
           "Tolerance"]
