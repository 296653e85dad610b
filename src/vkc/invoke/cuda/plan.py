"""The CUDA launch plan: what one generated host program allocates, fills and launches.

A recipe (``recipes/<family>.py``) or the untraced path (``untraced/``) returns a
:class:`Plan` (alias :data:`CudaPlan`, beside the Triton half's ``TritonPlan``): model
constants and wrapper bindings (:class:`Stmt`, each with where it came from), the one
runtime-sized dimension (:class:`Scale`), device buffers (:class:`Buffer`, filled as a
:class:`Fill` says), the wrapper's grid/block/shared-memory statements, the kernel
arguments and runtime checks (:class:`Check`).  Everything is frozen; C++ literals come from
:mod:`vkc.invoke.cuda.literals`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from vkc.invoke.cuda.literals import cpp_float, cpp_int, ident

__all__ = [
    "Buffer", "Check", "CudaPlan", "Fill", "FillKind", "Plan", "Role", "Scale", "Src", "Stmt", "affine", "const",
    "host", "join_args", "randint", "uniform", "zero",
]

FillKind = Literal["uniform", "randint", "affine", "const", "zero", "host"]
Role = Literal["in", "out", "inout", "ws"]
_ROLES = ("in", "out", "inout", "ws")


@dataclass(frozen=True)
class Src:
    """A piece of wrapper code, located verbatim (whitespace-insensitive) in the tree."""

    file: str      # "csrc/layernorm_kernels.cu"
    text: str      # the code, as it appears in the file (modulo whitespace)


@dataclass(frozen=True)
class Stmt:
    """One C++ statement of the generated program with where it came from."""

    code: str
    origin: str = ""        # "csrc/x.cu:123" (copied), "model: ..." (bound), "" (vkc)
    note: str = ""


@dataclass(frozen=True)
class Fill:
    """How a buffer is filled (deterministically) before the launch.

    kind: ``uniform`` (float in [a, b)), ``randint`` (integer in [a, b)), ``affine``
    (``(i*a + b) % c``), ``const`` (a), ``zero``, ``host`` (C++ code filling
    ``std::vector<T> h`` of size ``n``; earlier host-filled buffers are visible as
    ``h_<name>``).  a/b/c are C++ expressions.
    """

    kind: FillKind
    a: str = "0"
    b: str = "0"
    c: str = "1"
    code: str = ""

    def describe(self) -> str:
        return {
            "uniform": f"uniform [{self.a}, {self.b})",
            "randint": f"integers in [{self.a}, {self.b})",
            "affine": f"(i*{self.a} + {self.b}) % ({self.c})",
            "const": f"constant {self.a}",
            "zero": "zeros",
            "host": "host-side init",
        }[self.kind]


def uniform(lo: float | str, hi: float | str) -> Fill:
    return Fill("uniform", _f(lo), _f(hi))


def randint(lo: int | str, hi: int | str) -> Fill:
    return Fill("randint", _i(lo), _i(hi))


def affine(mul: int | str, add: int | str, mod: int | str) -> Fill:
    return Fill("affine", _i(mul), _i(add), _i(mod))


def const(v: float | str) -> Fill:
    return Fill("const", _f(v))


def zero() -> Fill:
    return Fill("zero")


def host(code: str) -> Fill:
    return Fill("host", code=code)


def _f(v: float | str) -> str:
    return v if isinstance(v, str) else cpp_float(v)


def _i(v: int | str) -> str:
    return v if isinstance(v, str) else cpp_int(v)


@dataclass(frozen=True)
class Buffer:
    """One device buffer: ``<ctype>* <name>`` of ``count`` elements."""

    name: str               # C++ identifier (device pointer variable)
    ctype: str              # element type
    count: str              # element count, C++ expression over the size variables
    fill: Fill
    role: Role = "in"       # "ws": workspace, not counted in bytes moved
    shape: str = ""         # human description, e.g. "[num_tokens, hidden_size]"

    def __post_init__(self) -> None:
        ident(self.name)
        if self.role not in _ROLES:
            raise ValueError(self.role)


@dataclass(frozen=True)
class Scale:
    """The runtime-sized dimension: fills the memory budget (or SMALL_SANITY)."""

    name: str               # e.g. "num_tokens"
    bytes_per_unit: str     # C++ expression (size_t) over the model constants
    small: int              # value under SMALL_SANITY
    multiple: int = 1       # round down to a multiple of this
    minimum: int = 1
    maximum: str = "(1LL << 31) - 1"  # C++ expression; cap (e.g. decode batch, context)
    fixed_bytes: str = "0"  # bytes that do not scale
    note: str = ""
    traced: int | None = None   # model-traced: FULL is this value (the traced op call's), not the budget fill
    traced_note: str = ""       # where ``traced`` comes from


@dataclass(frozen=True)
class Check:
    """A runtime check of the generated program: ``cond`` must hold (``message``: a C++ string literal)."""

    cond: str
    message: str


@dataclass(frozen=True)
class Plan:
    """Everything the template needs for one kernel x model x workload."""

    kernel_symbol: str                  # qualified C++ name, "vllm::rms_norm_kernel"
    template_args: tuple[str, ...]      # chosen instantiation
    consts: tuple[Stmt, ...]            # model constants + wrapper bindings (before sizing)
    scale: Scale
    derived: tuple[Stmt, ...]           # size variables depending on the scale (after sizing)
    buffers: tuple[Buffer, ...]
    launch_stmts: tuple[Stmt, ...]      # wrapper code computing grid/block/smem etc.
    grid: str
    block: str
    smem: str
    args: tuple[str, ...]               # kernel arguments, in order
    checks: tuple[Check, ...] = ()
    set_attributes: tuple[Stmt, ...] = ()   # cudaFuncSetAttribute(kernel, ...) lines
    bytes_moved: str = ""               # C++ expression; default: sum of in/out buffer bytes
    bytes_rule: str = ""                # what bytes_moved counts, in words (the model-traced header says it)
    dispatch: str = ""                  # how the instantiation was picked (for the header)
    wrapper: str = ""                   # "csrc/file.cu:LINE (function)"
    notes: tuple[str, ...] = ()
    grid_expr: str = ""                 # for the header / handoff (wrapper's expressions)
    block_expr: str = ""
    smem_expr: str = ""
    untraced: bool = False              # made by the untraced (generic) path
    min_gpus: int = 1                   # > 1: the program checks the device count and exits 2
    dump: tuple[str, ...] = field(default_factory=tuple)  # buffers dumped (default all)
    dump_values: tuple[str, ...] = ()   # C++ scalar expressions written to the dump manifest

    @property
    def instantiation(self) -> str:
        if not self.template_args:
            return self.kernel_symbol
        return f"{self.kernel_symbol}<{', '.join(self.template_args)}>"


CudaPlan = Plan


def join_args(args: Sequence[str]) -> str:
    return ", ".join(args)
