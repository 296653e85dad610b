"""The one template environment of vkc, and the one escaping layer for generated code.

Every file vkc generates (Triton modules and examples, CUDA units and host programs, reports)
comes from a Jinja2 template rendered here: StrictUndefined (a missing variable is an error),
``trim_blocks`` + ``lstrip_blocks``, trailing newline kept, HTML autoescaping only for
``*.html.j2``.  Templates are named ``"<package>/<file>"`` (``"vkc.invoke.triton/invoke.py.j2"``)
and live in that package's ``templates/`` folder.

Text that did not come from vkc itself -- model ids, paths, config strings, kernel names, notes --
reaches generated code only through these filters (one layer, tested with hostile values):

========== ==================================================================================
``py``     a Python literal (dict/list/tuple/str/int/float/bool/None; wrapped at 100 columns)
``pystr``  a Python string literal of ``str(value)``
``pydoc``  text safe inside a triple-quoted docstring (no quote run, no backslash escape, one line)
``pycomment`` / ``ccomment``  text safe on a ``#`` / ``//`` comment line (one line, printable)
``cstr``   a C++ string literal
========== ==================================================================================

After rendering, :func:`render` checks the result: ``check="python"`` parses it with ``ast``.
This is a leaf module: it imports only :mod:`vkc.errors` and :mod:`vkc.pyliteral`.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import jinja2

from vkc.errors import InvocationError
from vkc.pyliteral import pyrepr

Check = Literal["python"] | None

_PACKAGES = (
    "vkc.invoke.triton", "vkc.invoke.cuda", "vkc.extract.triton", "vkc.extract.cuda", "vkc.report",
    "vkc.diff", "vkc.export",
)


def one_line(value: Any) -> str:
    """``str(value)`` on one line of printable characters (others become ``?``)."""
    text = " ".join(str(value).splitlines())
    return "".join(c if c.isprintable() else "?" for c in text)


def pystr(value: Any) -> str:
    """A Python string literal of ``str(value)``."""
    return repr(str(value))


def pydoc(value: Any) -> str:
    """Text safe inside a ``\"\"\"`` docstring: one printable line, no backslash, no ``\"\"``."""
    text = one_line(value).replace("\\", "/")
    while '""' in text:
        text = text.replace('""', '"\u2033')
    return text.rstrip('"')


def pycomment(value: Any) -> str:
    """Text safe on a ``#`` comment line."""
    return one_line(value)


def ccomment(value: Any) -> str:
    """Text safe on a ``//`` comment line: printable ASCII, no trailing backslash (line splice)."""
    text = "".join(c if 32 <= ord(c) < 127 else "?" for c in str(value).replace("\n", " "))
    return text.rstrip("\\ ")


def cstr(value: Any) -> str:
    """A C++ string literal, every special or non-ASCII character escaped."""
    out = []
    for ch in str(value):
        if ch in ('"', "\\", "?"):
            out.append("\\" + ch)
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        else:
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8"))
    return '"' + "".join(out) + '"'


FILTERS = {"py": pyrepr, "pystr": pystr, "pydoc": pydoc, "pycomment": pycomment,
           "ccomment": ccomment, "cstr": cstr}


def _autoescape(name: str | None) -> bool:
    return bool(name and name.endswith(".html.j2"))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The environment (built once)."""
    root = Path(__file__).resolve().parent  # template folders by path: loading imports no package
    loader = jinja2.PrefixLoader(
        {p: jinja2.FileSystemLoader(str(root.joinpath(*p.split(".")[1:], "templates"))) for p in _PACKAGES},
        delimiter="/")
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=_autoescape)
    env.filters.update(FILTERS)
    return env


def render(template: str, *, check: Check = None, **context: Any) -> str:
    """Render ``"<package>/<file>"``; with ``check="python"`` the result must parse."""
    text = environment().get_template(template).render(**context)
    if check == "python":
        try:
            ast.parse(text)
        except SyntaxError as e:
            raise InvocationError(f"generated code from {template} does not parse: {e.msg} (line {e.lineno})",
                                  hint="this is a vkc bug; please report it with the command line") from None
    return text


__all__ = ["FILTERS", "ccomment", "cstr", "environment", "one_line", "pycomment", "pydoc", "pystr", "render"]
