"""The schema of a vLLM custom op, read from the tree's ``torch_bindings.cpp`` (``ops.def("...")``).

The traced call records the arguments the caller passed (positionally, by the schema's names, and its
keyword arguments); arguments left at their default are absent.  The C++ host function takes every
schema argument in schema order (the boxed registration requires it), so the program passes the
traced value where there is one and the schema's default where there is not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["SchemaArg", "op_schema", "parse_args"]


@dataclass(frozen=True)
class SchemaArg:
    name: str
    type: str                 # without alias annotations: "Tensor", "Tensor?", "float", "int[]", "str", ...
    default: str | None       # the schema's default text ("None", "1.702", "False", "[]"), None: required
    written: bool             # ``Tensor!`` / ``Tensor(a!)``: the op writes it

    @property
    def optional(self) -> bool:
        return self.type.endswith("?")

    @property
    def base(self) -> str:
        """The type without ``?``: ``Tensor``, ``Tensor[]``, ``int``, ``float``, ``str``, ``ScalarType``..."""
        return self.type.rstrip("?")


def _split_top(text: str) -> list[str]:
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


_ARG = re.compile(r"^(?P<type>.+?)\s+(?P<name>\w+)(?:\s*=\s*(?P<default>.+))?$")


def parse_args(schema: str) -> tuple[SchemaArg, ...]:
    """The arguments of ``name(args) -> ret`` (the keyword-only marker ``*`` dropped)."""
    head = schema.rsplit("->", 1)[0]
    inner = head[head.index("(") + 1:head.rindex(")")]
    out = []
    for part in _split_top(inner):
        if part == "*":
            continue
        part = re.sub(r"(\S)\s+!(\w)", r"\1! \2", part)     # "Tensor !x" (a spelling the tree has)
        m = _ARG.match(part)
        if m is None:
            raise ValueError(f"cannot parse schema argument {part!r}")
        raw = m.group("type")
        written = "!" in raw
        typ = re.sub(r"\([^)]*\)", "", raw).replace("!", "").replace(" ", "")
        out.append(SchemaArg(m.group("name"), typ, m.group("default"), written))
    return tuple(out)


@lru_cache(maxsize=8)
def _schemas(root: str) -> dict[str, str]:
    from vkc.modeltrace.opschema import parse_schemas

    out: dict[str, str] = {}
    for ns, schema in parse_schemas(root):
        name = schema.split("(", 1)[0].strip()
        out.setdefault(f"{ns}::{name}", schema)
    return out


def op_schema(root: str, op: str) -> tuple[str, tuple[SchemaArg, ...]] | None:
    """(schema text, its arguments) of ``op`` (``"_C::rms_norm"``), None when the tree defines none."""
    schema = _schemas(str(root)).get(op)
    if schema is None:
        return None
    try:
        return schema, parse_args(schema)
    except ValueError:
        return None
