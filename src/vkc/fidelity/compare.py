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


_SHARED_DECL = re.compile(r"^\s*\.shared\s[^;]*?([\w$]+)(?:\[\d*\])?\s*;", re.M)


def ptx_entries(ptx: str) -> dict[str, str]:
    """``.entry NAME(...) {body}`` of a PTX module: mangled name -> full text (balanced braces).

    ``.shared`` declarations of function-level statics sit inside the entry when one kernel
    of the module uses them and at module scope when several do (vLLM's TU often has more
    kernels than the extracted one); so each entry's ``.shared`` declarations, in the body or
    at module scope and referenced by the body, are moved to the end, sorted."""
    out: dict[str, str] = {}
    spans: list[tuple[int, int]] = []
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
        spans.append((start, i + 1))
    module = "".join(ptx[a:b] for a, b in zip([0] + [e for _, e in spans], [s for s, _ in spans] + [len(ptx)]))
    module_decls = {d.group(1): d.group(0).strip() for d in _SHARED_DECL.finditer(module)}
    for name, text in out.items():
        own = {d.group(1): d.group(0).strip() for d in _SHARED_DECL.finditer(text)}
        body = _SHARED_DECL.sub("", text)
        used = {**{k: v for k, v in module_decls.items() if re.search(rf"\b{re.escape(k)}\b", body)}, **own}
        out[name] = body + "".join(f"\n{used[k]}" for k in sorted(used))
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
    text = drop_internal_ids(text)
    text = _drop_assert_lines(text)
    return text + "\n"


def _drop_assert_lines(text: str) -> str:
    """``assert`` passes its source line to ``__assertfail`` (``st.param.b32 [param2+0], 130;``):
    a position in the file, not code; the extracted file's lines are numbered differently."""
    lines = text.split("\n")
    for i, ln in enumerate(lines):
        if re.fullmatch(r"st\.param\.b32 \[param2\+0\], \d+;", ln):
            for j in range(i + 1, min(i + 16, len(lines))):
                if lines[j].startswith("call"):    # the callee may sit on the next line
                    if "__assertfail" in " ".join(lines[j:j + 2]):
                        lines[i] = "st.param.b32 [param2+0], <assert line>;"
                    break
    return "\n".join(lines)


def drop_internal_ids(text: str) -> str:
    """Internal-linkage symbols and anonymous namespaces carry a hash of the file name in
    their mangling (``_ZZN48_INTERNAL_6bd1ebec_12_extracted_cu_a0b29e11_1371...``,
    ``_ZN51_GLOBAL__N__e31aad70_12_extracted_cu_...``); replace each length-prefixed
    identifier with a fixed one."""
    out, pos = [], 0
    for m in re.finditer(r"(?<![0-9])(\d+)(?:_INTERNAL_|_GLOBAL__N_)", text):
        if m.start() < pos:
            continue
        n = int(m.group(1))
        ident_start = m.start(1) + len(m.group(1))
        out.append(text[pos:m.start()])
        out.append("10_INTERNAL_" if "_INTERNAL_" in m.group(0) else "11_GLOBAL__N_")
        pos = ident_start + n
    out.append(text[pos:])
    return "".join(out)


def diff_summary(a: str, b: str, *, label_a: str = "extracted", label_b: str = "original",
                 max_lines: int = 12) -> dict[str, object]:
    """Counts of differing lines and the first hunk lines of the unified diff."""
    al, bl = a.splitlines(), b.splitlines()
    diff = list(difflib.unified_diff(al, bl, label_a, label_b, n=0, lineterm=""))
    minus = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
    plus = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
    return {"lines_a": len(al), "lines_b": len(bl), "only_in_a": minus, "only_in_b": plus,
            "excerpt": [d[:200] for d in diff[2:2 + max_lines]]}
