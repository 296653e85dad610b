"""Normalise compiler IR (Triton TTIR, PTX) and summarise the difference of two texts."""
from __future__ import annotations

import difflib
import re

_LOC_LINE = re.compile(r"^\s*#loc\d*\s*=.*$")
_SYM_MODULE = re.compile(r"@(?:[A-Za-z_][\w]*\.)+(?=[A-Za-z_])")


def _strip_loc_attrs(text: str) -> str:
    """Remove every ``loc(...)`` attribute (balanced parentheses, quoted strings kept intact)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        j = text.find("loc(", i)
        if j < 0:
            out.append(text[i:])
            break
        if j > 0 and (text[j - 1].isalnum() or text[j - 1] in "_#."):
            out.append(text[i:j + 4])
            i = j + 4
            continue
        out.append(text[i:j].rstrip(" "))
        k, depth, quoted = j + 4, 1, False
        while k < n and depth:
            c = text[k]
            if quoted:
                if c == "\\":
                    k += 1
                elif c == '"':
                    quoted = False
            elif c == '"':
                quoted = True
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            k += 1
        i = k
    return "".join(out)


def normalize_ttir(ttir: str, entry_name: str) -> str:
    """TTIR without locations (``loc(...)``, ``#loc`` lines), with the entry renamed ``@__entry__``
    and module prefixes dropped from symbol names (``@vllm.x.y.helper__..`` -> ``@helper__..``)."""
    text = _strip_loc_attrs(ttir)
    lines = [ln.rstrip() for ln in text.splitlines() if not _LOC_LINE.match(ln)]
    text = "\n".join(ln for ln in lines if ln.strip())
    text = _SYM_MODULE.sub("@", text)
    text = re.sub(r"@" + re.escape(entry_name) + r"\b", "@__entry__", text)
    return text + "\n"


_PTX_COMMENT = re.compile(r"//.*$")
_PTX_DEBUG = re.compile(r"^\s*(\.loc|\.file|@@DWARF|\.section\s+\.debug)")


def ptx_entries(ptx: str) -> dict[str, str]:
    """``.entry NAME(...) {body}`` of a PTX module: mangled name -> full text (balanced braces)."""
    out: dict[str, str] = {}
    for m in re.finditer(r"\.entry\s+([\w$]+)\s*\(", ptx):
        start = ptx.rfind("\n", 0, m.start()) + 1
        k = ptx.find("{", m.end())
        if k < 0:
            continue
        depth, i = 0, k
        while i < len(ptx):
            if ptx[i] == "{":
                depth += 1
            elif ptx[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        out[m.group(1)] = ptx[start:i + 1]
    return out


def normalize_ptx(body: str) -> str:
    """One ``.entry`` without comments/debug lines, whitespace collapsed, module-numbered names
    (``$L__BB<fn>_``, ``__local_depot<fn>``, ``$str<N>``, ``__unnamed_<N>``) made position-free."""
    lines = []
    for ln in body.splitlines():
        if _PTX_DEBUG.match(ln):
            continue
        ln = _PTX_COMMENT.sub("", ln)
        ln = " ".join(ln.split())
        if ln:
            lines.append(ln)
    text = "\n".join(lines)
    text = re.sub(r"\$L__BB\d+_", "$L__BB_", text)
    text = re.sub(r"__local_depot\d+", "__local_depot", text)
    text = re.sub(r"\$str(\$\d+)?", "$str", text)
    text = re.sub(r"__unnamed_\d+", "__unnamed", text)
    return text + "\n"


def diff_summary(a: str, b: str, *, label_a: str = "extracted", label_b: str = "original",
                 max_lines: int = 12) -> dict[str, object]:
    """Counts of differing lines and the first hunk lines of the unified diff."""
    al, bl = a.splitlines(), b.splitlines()
    diff = list(difflib.unified_diff(al, bl, label_a, label_b, n=0, lineterm=""))
    minus = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
    plus = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
    return {"lines_a": len(al), "lines_b": len(bl), "only_in_a": minus, "only_in_b": plus,
            "excerpt": [d[:200] for d in diff[2:2 + max_lines]]}
