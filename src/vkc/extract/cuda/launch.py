"""Launch-site facts for the invoker: config, template args, dispatch dtype maps."""
from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path

from vkc.atomic import store_cache
from vkc.cxx.launches import Launch
from vkc.cxx.model import FileModel, file_model
from vkc.cxx.text import balanced_close, line_of, split_top
from vkc.dtypes import DTYPES
from vkc.index.cuda_scan import csrc_files
from vkc.records import KernelEntry, SourceTree

# torch ScalarType enumerator -> C++ type of the dispatched scalar_t, and -> the torch dtype name
SCALAR_TYPES = {d.scalar_type: d.cxx for d in DTYPES if d.scalar_type and d.cxx}
DTYPE_NAMES = {d.scalar_type: d.name for d in DTYPES if d.scalar_type}


@lru_cache(maxsize=4)
def macro_index(root: str) -> dict[str, tuple[tuple[str, ...], str, str, int]]:
    """name -> (params, body, file, line) over all csrc files (CUDA view first).

    Parsing every csrc file costs seconds, so the result is cached on disk under
    ``cache_dir()/cuda_macros``, keyed by the files' (path, size, mtime) and vkc's parser
    sources; a missing or corrupt cache file is rebuilt."""
    tree = SourceTree(Path(root), "", "")
    files = csrc_files(tree)
    cache = _macro_cache_path(root, files)
    if cache is not None:
        try:
            data = json.loads(cache.read_text())
            return {k: (tuple(v[0]), v[1], v[2], v[3]) for k, v in data.items()}
        except (OSError, ValueError, TypeError, IndexError):
            pass
    out: dict[str, tuple[tuple[str, ...], str, str, int]] = {}
    for rel in files:
        fm = file_model(root, rel)
        for name, (params, body, line) in fm.macros.items():
            out.setdefault(name, (params, body, rel, line))
    if cache is not None:
        store_cache(cache, json.dumps(out))
    return out


def _macro_cache_path(root: str, files) -> Path | None:
    from vkc import __version__
    from vkc.source import cache_dir

    h = hashlib.sha256(f"{__version__}\0{root}".encode())
    try:
        for rel in files:
            st = os.stat(os.path.join(root, rel))
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        here = Path(__file__).resolve().parent
        for src in sorted([*here.glob("*.py"), *(here.parent.parent / "index" / "cxx").glob("*.py")]):
            h.update(src.read_bytes())
    except OSError:
        return None
    return cache_dir() / "cuda_macros" / f"{h.hexdigest()[:32]}.json"


def _args(s: str) -> list[str]:
    """Macro/call arguments: top-level commas, an empty last argument kept."""
    return split_top(s, keep_empty_last=True)


def _enclosing_calls(text: str, off: int, pattern: str) -> list[tuple[str, int, list[str]]]:
    """(macro name, start, args) of calls matching ``pattern`` whose parens contain ``off``."""
    res = []
    for m in re.finditer(r"\b(" + pattern + r")\s*\(", text[:off]):
        close = balanced_close(text, m.end() - 1)
        if close > off:
            res.append((m.group(1), m.start(), _args(text[m.end():close])))
    return res   # outermost first


def _expand_cases(macros, name: str, depth: int = 0) -> list[str]:
    """ScalarType enumerators a dispatch macro covers (follows nested CASE macros)."""
    if name not in macros or depth > 6:
        return []
    body = macros[name][1]
    found = re.findall(r"ScalarType::(\w+)", body)
    for sub in re.findall(r"\b(\w*DISPATCH_CASE\w*|\w*_CASE_\w+)\s*\(", body):
        if sub != name:
            found += _expand_cases(macros, sub, depth + 1)
    out = []
    for f in found:
        if f not in out:
            out.append(f)
    return out


def _case_type_var(macros, name: str, depth: int = 0) -> str:
    """Name the dispatch binds (scalar_t, or fp8_t/idx_t via ..._USING_HINT / using)."""
    body = macros.get(name, ((), "", "", 0))[1]
    m = re.search(r"using\s+(\w+)\s*=", body) or re.search(r"USING_HINT\s*\(\s*[^,]+,\s*(\w+)", body)
    if m:
        return m.group(1)
    if depth < 4:
        for sub in re.findall(r"\b(\w*CASE\w*)\s*\(", body):
            if sub != name and sub in macros:
                v = _case_type_var(macros, sub, depth + 1)
                if v != "scalar_t":
                    return v
    return "scalar_t"


def dispatch_info(tree: SourceTree, fm: FileModel, la: Launch) -> tuple[dict | None, list[dict]]:
    """The dtype dispatch around a launch: (primary, all enclosing dispatches)."""
    macros = macro_index(str(tree.root))
    text = fm.text
    if la.macro:
        # the launch lives in a #define: look inside its body and then around its uses
        params, body, _ = fm.macros[la.macro]
        inner = _enclosing_calls(body, body.find(la.callee.split("<")[0].split("::")[-1]) or 0,
                                 r"\w*DISPATCH\w*")
        uses = [m.start() for m in re.finditer(r"\b" + re.escape(la.macro) + r"\b", text)
                if line_of(text, m.start()) != fm.macros[la.macro][2]]
        outer = _enclosing_calls(text, uses[0], r"\w*DISPATCH\w*") if uses else []
        calls = outer + inner
        # macro (or a macro using it) passed as the FN argument of a dispatcher:
        # DISPATCH_BY_KV_CACHE_DTYPE(src, kv, CALL_X) with CALL_X expanding LAUNCH_X
        chain, frontier = [la.macro], [la.macro]
        for _ in range(3):
            nxt = [o for o, (_p, ob, _l) in fm.macros.items() if o not in chain
                   and any(re.search(r"\b" + re.escape(f) + r"\b", ob) for f in frontier)]
            chain += nxt
            frontier = nxt
        for mac in chain:
            for m in re.finditer(r"\b(\w*DISPATCH\w*)\s*\(([^;]*?)\b" + re.escape(mac) + r"\b\s*\)", text):
                calls.append((m.group(1), m.start(), _args(m.group(2) + mac)))
    else:
        calls = _enclosing_calls(text, la.start, r"\w*DISPATCH\w*")
    all_disp: list[dict] = []
    primary = None
    for name, _start, args in calls:
        if name not in macros:
            all_disp.append({"macro": name, "defined": False})
            continue
        params, body, mfile, mline = macros[name]
        d: dict = {"macro": name, "file": mfile, "line": mline}
        # a function-like macro passed as the FN argument (FN(type, ...) per case)
        fn_arg = next((a.strip() for a in args if a.strip() in fm.macros
                       and (la.macro or fm.macros[a.strip()][0])), None)
        if fn_arg:
            # FN(type, type, value) pattern: first call per source dtype wins
            fparams = fm.macros[fn_arg][0]
            cases: dict[str, list[str]] = {}
            fp = params[-1] if params else "FN"
            for m in re.finditer(r"ScalarType::(\w+)\)\s*\{\s*\\?\s*" + re.escape(fp) + r"\(([^;]*)\);", body):
                cases.setdefault(DTYPE_NAMES.get(m.group(1), m.group(1)), _args(m.group(2)))
            d["type_vars"] = list(fparams)
            d["type_var"] = fparams[0] if fparams else None
            d["cases"] = cases
            d["dtype_map"] = {k: v[0] for k, v in cases.items()}
        else:
            enums = _expand_cases(macros, name)
            if enums:
                tv = _case_type_var(macros, name)
                d["type_var"] = tv
                d["dtype_map"] = {DTYPE_NAMES.get(e, e): SCALAR_TYPES.get(e, e) for e in enums}
            else:
                # value dispatch (VEC_SIZE, BOOL, RANK ...): constexpr values it may bind
                sub = dict(zip(params, args))
                exp = body
                for p, a in sub.items():
                    if p and p != "...":
                        exp = re.sub(r"\b" + re.escape(p) + r"\b", a, exp)
                vals: dict[str, list[str]] = {}
                for m in re.finditer(r"constexpr\s+[\w:]+\s+(\w+)\s*=\s*([^;\\]+);", exp):
                    vals.setdefault(m.group(1), []).append(m.group(2).strip())
                for m in re.finditer(r"case\s+([^:]+):\s*\{?\s*\\?\s*constexpr\s+[\w:]+\s+(\w+)\s*=", exp):
                    pass
                if vals:
                    d["values"] = vals
        all_disp.append(d)
        if primary is None and "dtype_map" in d and (
                la.template_args is None or re.search(r"\b" + re.escape(d.get("type_var") or "") + r"\b",
                                                      la.template_args or "")):
            primary = d
    if primary is None or "bfloat16" not in primary.get("dtype_map", {}):
        primary = next((d for d in all_disp if "bfloat16" in d.get("dtype_map", {})), primary)
    return primary, all_disp


def launch_config(fm: FileModel, la: Launch) -> dict:
    """grid/block/smem/stream as written (cudaLaunchConfig_t fields for cudaLaunchKernelEx)."""
    if la.form in ("chevron", "macro") and "<<<" in la.text:
        cfg = la.config + [None] * (4 - len(la.config))
        return {"grid": cfg[0], "block": cfg[1], "smem": cfg[2] or "0", "stream": cfg[3]}
    if "hipLaunchKernelGGL" in la.text:
        cfg = la.config + [None] * 4
        return {"grid": cfg[0], "block": cfg[1], "smem": cfg[2], "stream": cfg[3]}
    var = la.config[0].lstrip("&").strip() if la.config else "config"
    scope = _function_text(fm, la)
    out = {"grid": None, "block": None, "smem": "0", "stream": None}
    for fld, key in (("gridDim", "grid"), ("blockDim", "block"), ("dynamicSmemBytes", "smem"), ("stream", "stream")):
        m = None
        for m in re.finditer(re.escape(var) + r"\s*\.\s*" + fld + r"\s*=\s*([^;]+);", scope):
            pass
        if m:
            out[key] = " ".join(m.group(1).split())
    return out


def _function_text(fm: FileModel, la: Launch) -> str:
    if la.macro:
        body = fm.macros[la.macro][1]
        uses = [m.start() for m in re.finditer(r"\b" + re.escape(la.macro) + r"\b", fm.text)]
        for s, e, _ in fm.functions:
            if any(s <= u < e for u in uses):
                return fm.text[s:e] + "\n" + body
        return body
    for s, e, _ in sorted(fm.functions, key=lambda f: f[0] - f[1]):
        if s <= la.start < e:
            return fm.text[s:e]
    return ""


def host_statements(fm: FileModel, la: Launch, kernel: KernelEntry, call: str) -> list[str]:
    """Verbatim ``call(...)`` statements in the wrapper that mention the kernel or its alias."""
    scope = _function_text(fm, la)
    out = []
    for m in re.finditer(r"\b" + call + r"\s*\(", scope):
        close = balanced_close(scope, m.end() - 1)
        stmt = " ".join(scope[m.start():close + 1].replace("\\\n", " ").split())
        if kernel.name in stmt or (la.base and re.search(r"\b" + re.escape(la.base) + r"\b", stmt)):
            out.append(stmt + ";")
    return out


def alias_template_args(fm: FileModel, la: Launch, kernel: KernelEntry) -> str | None:
    """Template args when the launch goes through ``auto k = ns::kernel<...>;``."""
    if la.template_args and (la.base == kernel.name or (la.macro and la.base in la.macro_params)):
        return la.template_args
    scope = _function_text(fm, la)
    m = re.search(r"\b" + re.escape(la.base) + r"\s*=\s*[&(]*\s*(?:[\w:]*::)?" + re.escape(kernel.name) + r"\s*<", scope)
    if m:
        i = m.end() - 1
        depth = 0
        for j in range(i, len(scope)):
            if scope[j] == "<":
                depth += 1
            elif scope[j] == ">":
                depth -= 1
                if depth == 0:
                    return " ".join(scope[i + 1:j].split())
    return la.template_args if la.base == kernel.name else None


def local_constants(fm: FileModel, la: Launch) -> dict[str, str]:
    """``constexpr T name = value;`` in the wrapper before the launch."""
    scope = _function_text(fm, la)
    out: dict[str, str] = {}
    for m in re.finditer(r"constexpr\s+(?:static\s+)?[\w:]+\s+(\w+)\s*=\s*([^;]+);", scope):
        out.setdefault(m.group(1), " ".join(m.group(2).split()))
    for m in re.finditer(r"\busing\s+(\w+)\s*=\s*([^;]+);", scope):
        out.setdefault(m.group(1), " ".join(m.group(2).split()))
    return out


def shadowed_dispatch_names(fm: FileModel, la: Launch, all_disp: list[dict],
                             consts: dict[str, str]) -> tuple[dict[str, str], list[str | None]]:
    """Scope nested dtype dispatches that bind the same name (``scalar_t`` of an outer
    FLOATING_TYPES and of an inner QUANT_TYPES): a ``using x = scalar_t;`` written between
    them names the outer one.  Returns the constants with such names renamed to
    ``scalar_t__o<k>`` (k: inner dispatches of that name it sits outside of) and, per
    dispatch of ``all_disp``, the name it binds (None: no renaming needed)."""
    names: list[str | None] = [None] * len(all_disp)
    if la.macro:
        return consts, names
    calls = _enclosing_calls(fm.text, la.start, r"\w*DISPATCH\w*")
    if len(calls) != len(all_disp):
        return consts, names
    scope_start = next((s for s, e, _ in sorted(fm.functions, key=lambda f: f[0] - f[1])
                        if s <= la.start < e), 0)
    typed = [(i, d["type_var"], calls[i][1]) for i, d in enumerate(all_disp)
             if d.get("dtype_map") and d.get("type_var")]
    out = dict(consts)
    renamed = False
    for name, val in consts.items():
        m = None
        for m in re.finditer(r"\busing\s+" + re.escape(name) + r"\s*=", fm.text[scope_start:la.start]):
            pass
        if m is None:
            continue
        pos = scope_start + m.start()
        for tv in {t for _, t, _ in typed}:
            if not re.search(r"\b" + re.escape(tv) + r"\b", val):
                continue
            k = sum(1 for _, t, st in typed if t == tv and st > pos)
            if k and any(t == tv and st < pos for _, t, st in typed):
                out[name] = re.sub(r"\b" + re.escape(tv) + r"\b", f"{tv}__o{k}", out[name])
                renamed = True
    if renamed:
        for i, tv, st in typed:
            k = sum(1 for _, t, st2 in typed if t == tv and st2 > st)
            names[i] = f"{tv}__o{k}" if k else tv
    return out, names


def macro_actuals(fm: FileModel, la: Launch, macro: str | None = None, depth: int = 0) -> dict[str, str]:
    """Macro parameter -> argument of the first use of the launch's #define (follows a use
    inside another #define to that macro's first use)."""
    macro = macro or la.macro
    if not macro or macro not in fm.macros or depth > 4:
        return {}
    params = fm.macros[macro][0]
    for m in re.finditer(r"\b" + re.escape(macro) + r"\s*\(", fm.text):
        if line_of(fm.text, m.start()) == fm.macros[macro][2]:
            continue
        close = balanced_close(fm.text, m.end() - 1)
        args = _args(fm.text[m.end():close])
        res = {p: a for p, a in zip(params, args) if p}
        # a use inside another #define: resolve that macro's parameters too
        ln = line_of(fm.text, m.start())
        for outer, (oparams, obody, oline) in fm.macros.items():
            if outer != macro and oline <= ln <= oline + obody.count("\n"):
                inner = macro_actuals(fm, la, outer, depth + 1)
                res = {p: inner.get(a, a) for p, a in res.items()}
                break
        return res
    return {}
