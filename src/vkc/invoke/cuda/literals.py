"""C++ literals and comment text for the generated host programs.

Everything that ends up in the generated C++ is either a literal made here (values from
model configs, names, ids), a statement a recipe wrote by hand (vkc code), or a statement
copied from the vLLM wrapper (:class:`vkc.invoke.cuda.plan.Stmt` with origin
``csrc/<file>:<line>``).  ``cpp_str`` and ``comment_text`` are the same escaping as
:mod:`vkc.templating`'s ``cstr`` / ``ccomment`` filters (one escaping layer).
"""
from __future__ import annotations

import math
import re

from vkc.errors import InvocationError
from vkc.templating import cstr

__all__ = ["comment_text", "cpp_bool", "cpp_float", "cpp_int", "cpp_str", "ident"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def cpp_int(v: int | None) -> str:
    """An integer literal (``LL`` suffix beyond 32 bits); None (a size the model lacks) is an InvocationError."""
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
    return cstr(s)


def comment_text(s: object) -> str:
    """Text safe inside a ``//`` comment: one line, printable ASCII, no trailing backslash."""
    t = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(s))
    return t.rstrip("\\ ")


def ident(s: str) -> str:
    """``s`` when it is a C++ identifier, else InvocationError."""
    if not _IDENT.fullmatch(s):
        raise InvocationError(f"{s!r} is not a C++ identifier")
    return s
