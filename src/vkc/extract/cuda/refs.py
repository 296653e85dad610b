"""Template arguments bound from a kernel's references (call sites, explicit
instantiations; see resolve.py), when its launch site alone does not bind them."""
from __future__ import annotations

import re
from pathlib import Path

from vkc.cxx.text import tparam_name
from vkc.extract.cuda import defaults as D
from vkc.extract.cuda import resolve as R
from vkc.extract.cuda.items import Unit
from vkc.records import KernelEntry, SourceTree


def resolve_refs(tree: SourceTree, kernel: KernelEntry, unit: Unit, known: set[str]):
    """Instantiations bound from the kernel's references (see resolve.py), or None."""
    tps = list(kernel.template_params)
    ns_of, spaces = namespaces(unit)
    ctx = R.Ctx(tree, kernel, known, spaces)
    cands: list[R.Cand] = []
    for fm, off, targs in R.references(ctx)[:40]:
        cands += R.bind(ctx, targs, fm, off, origin=f"{fm.relpath}:{fm.text.count(chr(10), 0, off) + 1}")
        if len(cands) >= R.MAX_CANDS:
            break
    if not cands:
        cands = [R.Cand([], origin="(no reference binds the template arguments)")]
    done = [D.complete(ctx, c, tps, _bf16_spelling(tree, kernel)) for c in cands]
    for c in done:
        _member_guesses(tree, kernel, c, tps)
    for c in done:
        c.args = D.qualify(ctx, c.args, ns_of)
    if any(ctx.free([a]) for c in done for a in c.args if a):
        done = [c for c in done if not ctx.free(c.args)] or done
    # call sites in CUTLASS code paths (cutlass::half_t ...) would pull CUTLASS in
    done = [c for c in done if not re.search(r"\b(cutlass|cute)::", ", ".join(c.args))] or done

    def dtype(c: R.Cand) -> str | None:
        for ch in c.choices.values():
            if isinstance(ch, dict) and ch.get("dtype") in ("float32", "float16", "bfloat16"):
                return ch["dtype"]
        return D.dtype_of(c.args, tps)

    def score(ic):
        i, c = ic
        dt = dtype(c)
        text = ", ".join(c.args)
        # bf16 first; then no fnuz, no int8 element type, fewest fp8 types (a bf16
        # model's output path), fewest extra features switched on
        return (c.defaults, dt != "bfloat16", "fnuz" in text, bool(re.search(r"\bint8_t\b", text)),
                len(re.findall(r"Float8|fp8|e4m3", text)), i)

    ranked = [c for _, c in sorted(enumerate(done), key=score)]
    insts: dict[str, str] = {}
    best = ranked[0]
    for c in ranked:
        # a dtype the call sites never bind fully is left out (its guessed arguments
        # may name a specialisation that does not exist) when another one is bound
        if c.defaults > best.defaults:
            continue
        insts.setdefault(dtype(c) or "default", ", ".join(c.args))
    choices = dict(best.choices)
    names = [tparam_name(p) for p in tps]
    seen: set[str] = set()
    variants: list[dict] = []
    for c in ranked:
        key = ", ".join(c.args)
        if c.defaults or key in seen or len(variants) >= 64:
            continue
        seen.add(key)
        variants.append({"args": key, "dtype": dtype(c), "origin": c.origin,
                         "bindings": dict(zip(names, c.args))})
    same = [v for v in variants if v["dtype"] == dtype(best)]
    for i, n in enumerate(names):
        vals: list[str] = []
        for v in same:
            x = v["bindings"].get(n)
            if x is not None and x not in vals:
                vals.append(x)
        if len(vals) > 1 and n not in choices and i < len(best.args):
            choices[n] = {"chosen": best.args[i], "cases": vals, "macro": None,
                          "note": "the call sites offer several values; see instantiation_variants"}
    return insts, choices, variants


def _member_guesses(tree: SourceTree, kernel: KernelEntry, cand: R.Cand, tps: list[str]) -> None:
    """An integer argument left as a guess whose call site spelled it ``First::kExperts``
    (a member of a type parameter): the member's value in the first instantiation the
    kernel's file writes of the class template defining it (``Tier<128, 8>``)."""
    text = None
    for i, n in enumerate(tparam_name(p) for p in tps):
        ch = cand.choices.get(n)
        m = re.fullmatch(r"\s*\w+\s*::\s*(\w+)\s*", str(ch.get("was", ""))) if isinstance(ch, dict) else None
        if not m or not isinstance(ch, dict) or not ch.get("default") or i >= len(cand.args):
            continue
        text = text if text is not None else (Path(tree.root) / kernel.file).read_text(errors="replace")
        v = _member_value(text, m.group(1))
        if v is not None:
            cand.args[i] = v
            ch.update({"chosen": v, "cases": [v], "note": f"{ch['was']}: the first instantiation in {kernel.file}"})


def _member_value(text: str, member: str) -> str | None:
    """``template <int A, int B> struct S { static constexpr int member = B; }`` and a
    later ``S<128, 8>``: "8"."""
    for m in re.finditer(r"template\s*<([^<>{};]*)>\s*struct\s+(\w+)\s*\{", text):
        body = text[m.end(): m.end() + 2000].split("};", 1)[0]
        mm = re.search(r"static\s+constexpr\s+\w+\s+" + re.escape(member) + r"\s*=\s*(\w+)\s*;", body)
        if not mm:
            continue
        params = [tparam_name(p.strip()) for p in m.group(1).split(",")]
        if mm.group(1) not in params:
            continue
        use = re.search(r"\b" + re.escape(m.group(2)) + r"\s*<\s*(-?\d+(?:\s*,\s*-?\d+)*)\s*>", text[m.end():])
        if use:
            vals = [v.strip() for v in use.group(1).split(",")]
            k = params.index(mm.group(1))
            return vals[k] if k < len(vals) else None
    return None


def _bf16_spelling(tree: SourceTree, kernel: KernelEntry) -> str:
    """The bf16 type an unbound type parameter gets: torch's when the kernel's file
    names only torch's (its traits, e.g. ``_typeConvert``, are specialised for it)."""
    text = (Path(tree.root) / kernel.file).read_text(errors="replace")
    if re.search(r"\b(c10|torch::headeronly)::BFloat16\b", text) and not re.search(
            r"\b(__nv_bfloat16|nv_bfloat16|__nv_bfloat162)\b", text):
        return "c10::BFloat16"
    return "__nv_bfloat16"


def namespaces(unit: Unit) -> tuple[dict[str, str], set[str]]:
    """name -> enclosing namespace path for names defined in a namespace (unique ones),
    and every namespace name in the unit."""
    where: dict[str, set[str]] = {}
    spaces: set[str] = set()
    for it in unit.items:
        path = [c[0].split(":")[1] for c in it.chain if c[0].startswith("ns:")]
        if any(not p for p in path):
            continue
        ns = "::".join(path)
        for i, p in enumerate(path):
            spaces.add(p)
            where.setdefault(p, set()).add("::".join(path[:i]))
        for d in it.defines:
            where.setdefault(d, set()).add(ns)
    return {n: next(iter(v)) for n, v in where.items() if len(v) == 1 and next(iter(v))}, spaces
