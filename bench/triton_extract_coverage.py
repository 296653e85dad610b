"""Coverage of the Triton extractor over every entry jit kernel of the vLLM tree.

Entries come from ``vkc.index.build_index`` when the index stage exports it; otherwise a
local ast scan: every jit function (``@triton.jit`` / ``@gluon.jit``, alone or under
autotune/heuristics) whose name host code uses other than by calling it (``K[grid]``,
``kernel=K``, ``f(K, ...)``, ``K.warmup``) counts as an entry.  Each is extracted, then
checked standalone in batches (many modules per clean interpreter).

    python bench/triton_extract_coverage.py [--limit N] [--batch 40] [--show-failures]
"""
from __future__ import annotations

import argparse
import ast
import collections
import sys
import time
from pathlib import Path

from vkc.errors import VkcError
from vkc.extract.triton import check_standalone_many, extract_triton
from vkc.records import KernelEntry
from vkc.source import resolve_source


def _is_jit(dec: ast.expr) -> bool:
    n = dec.func if isinstance(dec, ast.Call) else dec
    if not isinstance(n, ast.Attribute) or n.attr not in ("jit", "autotune", "heuristics"):
        return False
    root = n.value
    while isinstance(root, ast.Attribute):
        root = root.value
    return isinstance(root, ast.Name) and root.id in ("triton", "gluon")


def scan_entries(root: Path) -> list[KernelEntry]:
    defs, used = [], set()
    for path in sorted((root / "vllm").rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if "triton" not in text and "gluon" not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        rel = path.relative_to(root).as_posix()
        jit_bodies: set[int] = set()

        def visit(stmts, prefix, rel=rel, jit_bodies=jit_bodies):
            for st in stmts:
                if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    q = prefix + [st.name]
                    if any(_is_jit(d) for d in st.decorator_list):
                        line = min([st.lineno] + [d.lineno for d in st.decorator_list])
                        defs.append((rel, ".".join(q), st.name, line, st.end_lineno, bool(prefix)))
                        jit_bodies.update(id(n) for n in ast.walk(st))
                    visit(st.body, q)
                elif isinstance(st, ast.ClassDef):
                    visit(st.body, prefix + [st.name])
                elif isinstance(st, (ast.If, ast.Try, ast.With)):
                    for block in ("body", "orelse", "finalbody"):
                        visit(getattr(st, block, []), prefix)
                    for h in getattr(st, "handlers", []):
                        visit(h.body, prefix)
        visit(tree.body, [])
        callees = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        for n in ast.walk(tree):
            if id(n) in jit_bodies or id(n) in callees:
                continue
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                used.add(n.id)
            elif isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load):
                used.add(n.attr)
    out = []
    for rel, qual, name, line, end, in_class in defs:
        if name in used or (in_class and name == "kernel"):
            mod = rel[:-3].replace("/", ".").removesuffix(".__init__")
            out.append(KernelEntry("triton", name, qual, rel, line, end, module=mod,
                                   qualified=f"{mod}:{qual}"))
    return out


def entries(tree) -> tuple[list[KernelEntry], str]:
    try:
        from vkc.index import build_index  # type: ignore[attr-defined]
    except ImportError:
        return scan_entries(tree.root), "local ast scan"
    idx = build_index(tree)
    return [k for k in idx.kernels if k.lang == "triton" and k.role == "entry"], "vkc.index.build_index"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--show-failures", action="store_true")
    args = ap.parse_args(argv)
    tree = resolve_source()
    t0 = time.time()
    kernels, how = entries(tree)
    if args.limit:
        kernels = kernels[: args.limit]
    t_index = time.time() - t0
    fails: dict[str, list[str]] = collections.defaultdict(list)
    done = []
    t1 = time.time()
    for k in kernels:
        try:
            ex = extract_triton(tree, k)
        except VkcError as e:
            fails["extract: " + _reason(e.message)].append(f"{k.qualified}: {e.message}")
            continue
        except Exception as e:  # noqa: BLE001 - a bug: count it, keep going
            fails[f"extract crash: {type(e).__name__}"].append(f"{k.qualified}: {type(e).__name__}: {e}")
            continue
        done.append((k, ex))
    t_extract = time.time() - t1
    t2 = time.time()
    ok = 0
    fallback = sum(1 for _, ex in done if ex.facts.get("runtime_fallback"))
    for i in range(0, len(done), args.batch):
        chunk = done[i:i + args.batch]
        res = check_standalone_many([(ex.source_code, ex.facts["entry_symbol"]) for _, ex in chunk])
        for (k, _), probs in zip(chunk, res):
            if probs:
                fails["standalone: " + _reason(probs[0])].append(f"{k.qualified}: {'; '.join(probs)}")
            else:
                ok += 1
    t_check = time.time() - t2
    n = len(kernels)
    print(f"entries: {n} (from {how}, {t_index:.1f}s)")
    print(f"extracted: {len(done)}/{n}   standalone OK: {ok}/{n} ({100.0 * ok / max(n, 1):.1f}%)   "
          f"runtime fallback used: {fallback}")
    print(f"time: extract {t_extract:.1f}s, standalone checks {t_check:.1f}s, total {time.time() - t0:.1f}s")
    for reason, lst in sorted(fails.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(lst):4d}  {reason}")
        if args.show_failures:
            for x in lst:
                print(f"          {x[:300]}")
    return 0


def _reason(msg: str) -> str:
    msg = msg.split(" (hint")[0]
    for sep in (":", " in ", "("):
        pass
    words = msg.split()
    return " ".join(w for w in words[:6] if not any(c in w for c in "/`'\"")) or msg[:40]


if __name__ == "__main__":
    sys.exit(main())
