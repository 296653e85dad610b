"""Bind a kernel's template arguments from the host code around its references.

A reference is any ``kernel<...>`` outside its definition (chevron launches,
``cudaLaunchKernelEx(&cfg, kernel<...>, ...)``, ``auto k = cond ? &a<...> : &b<...>``,
``launchWithPDL(kernel<...>, ...)``) or a macro body ``P<...>`` whose parameter ``P`` is
passed the kernel's name (``KL(ngpus, name)``).  Free identifiers are bound by walking
up: local ``constexpr``/``using`` before the reference, the uses of the ``#define``
holding it, the dtype/value dispatch macros around it, and the call sites (explicit
instantiations included) of the function template holding it.  What stays free gets a
default (typename: the bf16 type; others: the parameter's default, ``false`` or the
first value the code offers), recorded as a choice (:mod:`vkc.extract.cuda.defaults`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from vkc.cxx.launches import Launch
from vkc.cxx.model import FileModel, file_model
from vkc.cxx.text import line_of, paren_args, tparam_name
from vkc.index.cuda_scan import csrc_files
from vkc.records import KernelEntry, SourceTree

MAX_DEPTH = 6
MAX_PER_LEVEL = 24
MAX_CANDS = 400
_CONCRETE_NS = {"std", "c10", "torch", "at", "cuda", "cub", "cute", "cutlass", "vllm", "nvcuda",
                "cooperative_groups", "thrust", "detail", "cg"}
_WORDS = {"typename", "template", "sizeof", "true", "false", "nullptr", "const", "unsigned", "signed",
          "int", "long", "short", "char", "bool", "float", "double", "void", "auto", "decltype",
          "static_cast", "reinterpret_cast", "alignof", "constexpr", "struct", "class", "volatile"}


@dataclass
class Cand:
    args: list[str]
    choices: dict = field(default_factory=dict)
    origin: str = ""
    defaults: int = 0


def tparam_default(p: str) -> str | None:
    m = re.search(r"=\s*(.+)$", p, flags=re.S)
    return " ".join(m.group(1).split()) if m else None


def split_targs(s: str) -> list[str]:
    """Split template arguments at top-level commas (<>, (), [], {} nest)."""
    out: list[str] = []
    cur: list[str] = []
    depth = 0
    i = 0
    while i < len(s):
        ch = s[i]
        if ch in "([{<":
            depth += 1
        elif ch in ")]}>":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(" ".join("".join(cur).split()))
            cur = []
        else:
            cur.append(ch)
        i += 1
    last = " ".join("".join(cur).split())
    if last or out:
        out.append(last)
    return [a.replace("\\", " ").strip() for a in out]


def angle_close(text: str, i: int) -> int:
    """Index of the '>' closing the '<' at text[i] (-1 if none)."""
    depth, paren = 0, 0
    for j in range(i, min(len(text), i + 2000)):
        c = text[j]
        if c in "([{":
            paren += 1
        elif c in ")]}":
            paren -= 1
            if paren < 0:
                return -1
        elif c == ";" and paren == 0:
            return -1
        elif paren == 0 and c == "<":
            depth += 1
        elif paren == 0 and c == ">":
            depth -= 1
            if depth == 0:
                return j
    return -1


def subst(expr: str, mapping: dict[str, str]) -> str:
    for k, v in mapping.items():
        if k and v is not None and k != v:
            expr = re.sub(r"(?<![\w.])(?<!::)(?<!->)" + re.escape(k) + r"\b", lambda _m, v=v: v, expr)  # type: ignore[misc]
    return expr


class Ctx:
    """Per-kernel resolution context (tree, known global names)."""

    def __init__(self, tree: SourceTree, kernel: KernelEntry, known: set[str], namespaces: set[str]):
        self.tree = tree
        self.root = str(tree.root)
        self.kernel = kernel
        self.known = known
        self.namespaces = namespaces | _CONCRETE_NS

    def free(self, args: list[str]) -> set[str]:
        out: set[str] = set()
        for a in args:
            s = re.sub(r'"(?:\\.|[^"\\])*"', " ", a)
            for m in re.finditer(r"(?<![\w.])(?<!::)(?<!->)([A-Za-z_]\w*)(\s*::\s*[A-Za-z_~]\w*)*", s):
                head = m.group(1)
                if head in _WORDS or head in self.namespaces:
                    continue
                if m.group(2) is None and head in self.known:
                    continue
                if m.group(2) is not None and head in self.known:
                    continue
                if re.fullmatch(r"(u?int\d+_t|size_t|half2?|__half2?|__nv_\w+|nv_bfloat162?|float[1-4]|"
                                r"int[1-4]|uint[1-4]|dim3|__nv_fp8\w*|MIN|MAX|min|max)", head):
                    continue
                out.add(head)
        return out


def _macro_at(fm: FileModel, off: int) -> str | None:
    ln = line_of(fm.text, off)
    best = None
    for name, (params, body, mline) in fm.macros.items():
        if mline <= ln <= mline + body.count("\n") and (best is None or mline > fm.macros[best][2]):
            best = name
    return best


def _macro_uses(fm: FileModel, name: str) -> list[tuple[int, list[str]]]:
    params, _body, mline = fm.macros[name]
    out: list[tuple[int, list[str]]] = []
    for m in re.finditer(r"\b" + re.escape(name) + r"\b", fm.text):
        ln = line_of(fm.text, m.start())
        if ln == mline or re.match(r"\s*#\s*(undef|ifdef|ifndef|define)\b",
                                   fm.text[fm.text.rfind("\n", 0, m.start()) + 1:m.start()] + " "):
            continue
        rest = fm.text[m.end():m.end() + 400]
        if params:
            k = len(rest) - len(rest.lstrip())
            if not rest[k:].startswith("("):
                # passed as an argument (FN of a dispatcher): no actuals
                out.append((m.start(), []))
                continue
            out.append((m.start(), paren_args(fm.text, m.end() + k)))
        else:
            out.append((m.start(), []))
    return out


def _function_at(fm: FileModel, off: int) -> tuple[int, int, str] | None:
    best = None
    for s, e, name in fm.functions:
        if s <= off < e and (best is None or s >= best[0]):
            best = (s, e, name)
    return best


def template_header(text: str, start: int) -> list[str] | None:
    """Template parameter list right before ``start`` (a definition's first char)."""
    before = text[:start].rstrip()
    for kw in ("static", "inline", "__host__", "__device__", "__forceinline__", "constexpr"):
        while before.endswith(kw):
            before = before[: -len(kw)].rstrip()
    if not before.endswith(">"):
        return None
    depth = 0
    for j in range(len(before) - 1, max(-1, len(before) - 3000), -1):
        c = before[j]
        if c == ">":
            depth += 1
        elif c == "<":
            depth -= 1
            if depth == 0:
                if re.search(r"\btemplate\s*$", before[:j]):
                    inner = before[j + 1:-1]
                    return [p for p in split_targs(inner) if p]
                return None
    return None


def local_constants(fm: FileModel, off: int) -> dict[str, str]:
    """``constexpr``/``using`` names defined before ``off`` in the enclosing function
    (the nearest definition wins)."""
    fn = _function_at(fm, off)
    if fn is None:
        return {}
    scope = fm.text[fn[0]:off]
    out: dict[str, str] = {}
    for m in re.finditer(r"\bconstexpr\s+(?:static\s+)?(?:const\s+)?[\w:]+(?:\s*<[^;>]*>)?\s+(\w+)\s*(?:=\s*([^;]+)|\{([^;{}]+)\})\s*;",
                         scope):
        out[m.group(1)] = " ".join((m.group(2) or m.group(3)).split())
    for m in re.finditer(r"\bstatic\s+constexpr\s+[\w:]+\s+(\w+)\s*=\s*([^;]+);", scope):
        out[m.group(1)] = " ".join(m.group(2).split())
    for m in re.finditer(r"\busing\s+(\w+)\s*=\s*([^;]+);", scope):
        out[m.group(1)] = " ".join(m.group(2).split())
    return out


@lru_cache(maxsize=8)
def _sources(root: str) -> tuple[str, ...]:
    return tuple(csrc_files(SourceTree(Path(root), "", "")))


def _call_sites(root: str, fname: str, def_file: str, def_start: int) -> list[tuple[FileModel, int, list[str]]]:
    """``fname<...>`` references (calls, explicit instantiations) outside its definition."""
    out = []
    pat = re.compile(r"(?<![\w:])(?:[\w]+::)*" + re.escape(fname) + r"\s*<(?!<)")
    for rel in _sources(root):
        fm = file_model(root, rel)
        if fname not in fm.text:
            continue
        for m in pat.finditer(fm.text):
            if rel == def_file and abs(m.start() - def_start) < 4 or _in_template_header_of(fm, m.start(), fname):
                continue
            i = m.end() - 1
            j = angle_close(fm.text, i)
            if j < 0:
                continue
            out.append((fm, m.start(), split_targs(fm.text[i + 1:j])))
    # explicit instantiations (concrete) first, then the rest in file order
    out.sort(key=lambda x: (not re.match(r"\s*template\s+[\w\s:]*$",
                                         x[0].text[x[0].text.rfind("\n", 0, x[1]) + 1:x[1]]), ))
    return out


def _in_template_header_of(fm: FileModel, off: int, fname: str) -> bool:
    # the definition's own declarator (`void fname<...>` specialisations are rare)
    line = fm.text[fm.text.rfind("\n", 0, off) + 1:off]
    return bool(re.search(r"\b(void|auto|bool|int)\s*$", line)) and not line.lstrip().startswith("template")


def _dispatch_binds(ctx: Ctx, fm: FileModel, off: int, args: list[str], free: set[str]) -> list[Cand] | None:
    """Bind free names a dtype/value dispatch around ``off`` defines (bf16 first)."""
    from vkc.extract.cuda import launch as L
    fake = Launch(file=fm.relpath, line=line_of(fm.text, off), form="chevron", wrapper=None, text="",
                  callee="", base="", template_args=", ".join(args), config=[], args=[], start=off)
    try:
        _primary, all_disp = L.dispatch_info(ctx.tree, fm, fake)
    except Exception:  # noqa: BLE001 - an unparsable dispatch binds nothing
        return None
    variants = [Cand(list(args))]
    hit = False
    for d in all_disp:
        tv = d.get("type_var")
        if d.get("dtype_map") and tv in free:
            hit = True
            dm = d["dtype_map"]
            order = sorted(dm, key=lambda k: (k != "bfloat16", k.startswith("float8") and "fnuz" in k))
            nxt = []
            for c in variants:
                for dt in order:
                    nc = Cand([subst(a, {tv: dm[dt]}) for a in c.args], dict(c.choices))
                    nc.choices[tv] = {"chosen": dm[dt], "cases": list(dm.values()), "macro": d["macro"],
                                      "dtype": dt}
                    nxt.append(nc)
            variants = nxt[:MAX_PER_LEVEL]
        for var, vals in (d.get("values") or {}).items():
            if var in free:
                hit = True
                for c in variants:
                    c.args = [subst(a, {var: vals[0]}) for a in c.args]
                    c.choices[var] = {"chosen": vals[0], "cases": vals, "macro": d["macro"]}
    return variants if hit else None


def bind(ctx: Ctx, args: list[str], fm: FileModel, off: int, depth: int = 0,
         origin: str = "") -> list[Cand]:
    """Candidate bindings of ``args`` written at ``fm.text[off]``."""
    free = ctx.free(args)
    if not free or depth > MAX_DEPTH:
        return [Cand(list(args), origin=origin)]
    macro = _macro_at(fm, off)
    if macro is not None:
        params = [p for p in fm.macros[macro][0] if p and p != "..."]
        out: list[Cand] = []
        uses = _macro_uses(fm, macro)
        for use_off, actuals in uses[:MAX_PER_LEVEL]:
            mp = {p: a for p, a in zip(params, actuals) if a}
            new = [subst(a, mp) for a in args]
            out += bind(ctx, new, fm, use_off, depth + 1, origin or f"{fm.relpath}:{line_of(fm.text, use_off)}")
            if len(out) >= MAX_CANDS:
                break
        return out or [Cand(list(args), origin=origin)]
    consts = local_constants(fm, off)
    if consts:
        for _ in range(4):
            new = [subst(a, {k: v for k, v in consts.items() if k in ctx.free(args)}) for a in args]
            if new == args:
                break
            args = new
        free = ctx.free(args)
        if not free:
            return [Cand(list(args), origin=origin)]
    disp = _dispatch_binds(ctx, fm, off, args, free)
    if disp is not None:
        out = []
        for c in disp:
            for r in bind(ctx, c.args, fm, off, depth + 1, origin):
                r.choices = {**c.choices, **r.choices}
                out.append(r)
        return out
    fn = _function_at(fm, off)
    if fn is not None:
        tps = template_header(fm.text, fn[0])
        if tps:
            names = [tparam_name(p) for p in tps]
            if free & set(names):
                fname = fn[2].split("::")[-1]
                sites = _call_sites(ctx.root, fname, fm.relpath, fn[0])
                out = []
                for fm2, off2, actuals in sites[:MAX_PER_LEVEL]:
                    mp = {}
                    for i, n in enumerate(names):
                        dflt = tparam_default(tps[i])
                        if i < len(actuals) and actuals[i]:
                            mp[n] = actuals[i]
                        elif dflt is not None:
                            mp[n] = dflt
                    new = [subst(a, mp) for a in args]
                    out += bind(ctx, new, fm2, off2, depth + 1,
                                origin or f"{fm2.relpath}:{line_of(fm2.text, off2)}")
                    if len(out) >= MAX_CANDS:
                        break
                if out:
                    return out
                defaults = {n: d for n, p in zip(names, tps) if (d := tparam_default(p))}
                if defaults:
                    args = [subst(a, defaults) for a in args]
    return [Cand(list(args), origin=origin)]


def references(ctx: Ctx) -> list[tuple[FileModel, int, list[str]]]:
    """Every ``kernel<...>`` outside the definition, and macro-argument references."""
    name = ctx.kernel.name
    out = []
    pat = re.compile(r"(?<![\w])" + re.escape(name) + r"\s*<(?!<)")
    for rel in _sources(ctx.root):
        fm = file_model(ctx.root, rel)
        if name not in fm.text:
            continue
        spans = [(k.start, k.end) for k in fm.kernels]
        for m in pat.finditer(fm.text):
            if any(s <= m.start() < e for s, e in spans):
                continue
            i = m.end() - 1
            j = angle_close(fm.text, i)
            if j < 0:
                continue
            out.append((fm, m.start(), split_targs(fm.text[i + 1:j])))
        # macro bodies `P<...>` with P a parameter the kernel's name is passed to
        for mname, (params, body, mline) in fm.macros.items():
            for pi, p in enumerate(params):
                mm = re.search(r"\b" + re.escape(p) + r"\s*<(?!<)", body) if p else None
                if mm is None:
                    continue
                bj = angle_close(body, mm.end() - 1)
                if bj < 0:
                    continue
                targs = split_targs(body[mm.end():bj])
                for use_off, actuals in _macro_uses(fm, mname):
                    if pi < len(actuals) and re.sub(r"^[&(\s]*", "", actuals[pi]).split("::")[-1].strip() == name:
                        mp = {q: a for q, a in zip(params, actuals) if q and a}
                        out.append((fm, use_off, [subst(t, mp) for t in targs]))
    own = [r for r in out if r[0].relpath == ctx.kernel.file]
    return own + [r for r in out if r[0].relpath != ctx.kernel.file]
