"""The plan a recipe hands the host-program template, plus C++ literal helpers.

Everything that ends up in the generated C++ is either a literal made by the
``cpp_*`` helpers below (values from model configs, names, ids), a statement a
recipe wrote by hand (vkc code), or a statement copied from the vLLM wrapper
(:class:`Stmt` with ``origin`` ``csrc/<file>:<line>``).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

from vkc.errors import InvocationError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ---------------------------------------------------------------- literals
def cpp_int(v: int) -> str:
    """An integer literal (``LL`` suffix beyond 32 bits)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvocationError(f"expected an integer, got {v!r}")
    return f"{v}LL" if abs(v) >= 2**31 else str(v)


def cpp_float(v: float) -> str:
    """A float literal (``f`` suffix); rejects NaN/inf."""
    v = float(v)
    if not math.isfinite(v):
        raise InvocationError(f"non-finite value {v!r} cannot become a C++ literal")
    s = repr(v)
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def cpp_bool(v: bool) -> str:
    return "true" if v else "false"


def cpp_str(s: str) -> str:
    """A C++ string literal with every non-printable / special character escaped."""
    out = []
    for ch in s:
        o = ord(ch)
        if ch in ('"', "\\", "?"):
            out.append("\\" + ch)
        elif 32 <= o < 127:
            out.append(ch)
        else:
            for b in ch.encode("utf-8"):
                out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def comment_text(s: str) -> str:
    """Text safe inside a ``//`` comment: one line, printable ASCII, no trailing backslash."""
    t = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(s))
    return t.rstrip("\\ ")


def ident(s: str) -> str:
    if not _IDENT.fullmatch(s):
        raise InvocationError(f"{s!r} is not a C++ identifier")
    return s


# ---------------------------------------------------------------- plan parts
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
    kind: str
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
    name: str               # C++ identifier (device pointer variable)
    ctype: str              # element type
    count: str              # element count, C++ expression over the size variables
    fill: Fill
    role: str = "in"        # "in" | "out" | "inout" | "ws" (workspace, not counted)
    shape: str = ""         # human description, e.g. "[num_tokens, hidden_size]"

    def __post_init__(self) -> None:
        ident(self.name)
        if self.role not in ("in", "out", "inout", "ws"):
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


@dataclass(frozen=True)
class Check:
    cond: str               # C++ boolean expression that must hold
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
    dispatch: str = ""                  # how the instantiation was picked (for the header)
    wrapper: str = ""                   # "csrc/file.cu:LINE (function)"
    notes: tuple[str, ...] = ()
    grid_expr: str = ""                 # for the header / handoff (wrapper's expressions)
    block_expr: str = ""
    smem_expr: str = ""
    untraced: bool = False              # generic fallback
    min_gpus: int = 1                   # > 1: the program checks the device count and exits 2
    dump: tuple[str, ...] = field(default_factory=tuple)  # buffers dumped (default all)
    dump_values: tuple[str, ...] = ()   # C++ scalar expressions written to the dump manifest

    @property
    def instantiation(self) -> str:
        if not self.template_args:
            return self.kernel_symbol
        return f"{self.kernel_symbol}<{', '.join(self.template_args)}>"


def join_args(args: Sequence[str]) -> str:
    return ", ".join(args)
