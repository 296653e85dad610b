"""Which Python files of a vLLM tree the Triton scan reads, decided cheaply.

Parsing all ~3000 modules of ``vllm/`` with ``ast`` takes far too long, so the
scan parses only:

* files whose text has a ``@...jit`` decorator line (they may define kernels);
* files that import (directly, or through a package that re-exports kernel
  names) one of those modules: only they can launch a kernel of another file.

Imports are found with regular expressions over the raw text; a false positive
only costs one more parse.  Modules reached later through name resolution are
parsed on demand by :class:`vkc.index.triton_resolve.Project`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

JIT_DECORATOR = re.compile(r"^[ \t]*@[ \t]*(?:[A-Za-z_][\w.]*\.)?jit\b", re.M)
# text that may hold a launch: K[grid](, K.warmup(, launcher classes, dispatchers
LAUNCH_TOKENS = ("](", ".warmup(", "kernel_launcher", "dispatcher_with_warmup", "wrap_triton")


def has_launch_token(text: str, start: int = 0, end: int | None = None) -> bool:
    end = len(text) if end is None else end
    return any(text.find(tok, start, end) != -1 for tok in LAUNCH_TOKENS)

TRITON_IMPORT = re.compile(
    r"^[ \t]*(?:from[ \t]+(?:triton|vllm\.triton_utils)\b[\w.]*[ \t]+import|import[ \t]+triton\b)", re.M)
_FROM = re.compile(
    r"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*(?:\\\n[^\n]*)*)", re.M)
_IMPORT = re.compile(r"^[ \t]*import[ \t]+([^\n]*(?:\\\n[^\n]*)*)", re.M)
_COMMENT = re.compile(r"#[^\n]*")


def module_name(rel: str) -> str:
    """``vllm/a/b.py`` -> ``vllm.a.b``; ``vllm/a/__init__.py`` -> ``vllm.a``."""
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def list_modules(root: Path) -> dict[str, str]:
    """Every ``.py`` under ``root/vllm``: dotted module name -> relative path."""
    out: dict[str, str] = {}
    base = root / "vllm"
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        for fn in sorted(filenames):
            if fn.endswith(".py"):
                rel = f"{rel_dir}/{fn}"
                out[module_name(rel)] = rel
    return out


def resolve_relative(module: str, is_pkg: bool, dots: int, rest: str) -> str:
    """Absolute module name of ``from <dots><rest> import ...`` inside ``module``."""
    if not dots:
        return rest
    pkg = module if is_pkg else module.rpartition(".")[0]
    for _ in range(dots - 1):
        pkg = pkg.rpartition(".")[0]
    return f"{pkg}.{rest}" if rest and pkg else (pkg or rest)


def _names(clause: str) -> list[tuple[str, str | None]]:
    """``a, b as c`` -> [("a", None), ("b", "c")]."""
    clause = _COMMENT.sub("", clause).replace("\\\n", " ").strip("() \t\n")
    out: list[tuple[str, str | None]] = []
    for item in clause.split(","):
        words = item.split()
        if words:
            out.append((words[0], words[2] if len(words) == 3 and words[1] == "as" else None))
    return out


def from_imports(text: str) -> list[tuple[int, str, str, str | None]]:
    """(level, module, name, asname) of every ``from ... import`` line, by regex."""
    out = []
    if "import" in text:
        for m in _FROM.finditer(text):
            for name, asname in _names(m.group(3)):
                out.append((len(m.group(1)), m.group(2), name, asname))
    return out


def plain_imports(text: str) -> list[tuple[str, str | None]]:
    """(module, asname) of every ``import ...`` line, by regex."""
    out: list[tuple[str, str | None]] = []
    if "import" in text:
        for m in _IMPORT.finditer(text):
            out.extend(_names(m.group(1)))
    return out


def import_edges(text: str, module: str, is_pkg: bool) -> list[tuple[str, str | None]]:
    """(module, name or None) pairs this file imports, found by regex."""
    edges: list[tuple[str, str | None]] = []
    for level, base, name, _ in from_imports(text):
        edges.append((resolve_relative(module, is_pkg, level, base), name))
    for name, _ in plain_imports(text):
        edges.append((name, None))
    return edges


def host_modules(texts: dict[str, str], pkgs: set[str], jit_mods: set[str],
                 jit_names: set[str], all_edges: dict[str, list[tuple[str, str | None]]] | None = None) -> set[str]:
    """Modules that may hold or launch kernels.

    * the jit modules;
    * exporters: modules importing a kernel *name* from a jit module or another
      exporter (package re-exports, ``from m import K``), up to a fixpoint;
    * modules with launch-like text (``](``, ``.warmup(``, ...) that import an
      exporter as a module object (``mod.K[grid]``) or import Triton (host
      launcher helpers such as ``launch_autotuned(kernel, grid)``).

    ``all_edges``: every module's :func:`import_edges`, when the caller has them.
    """
    edges = {m: all_edges[m] if all_edges is not None else import_edges(t, m, m in pkgs)
             for m, t in texts.items() if m not in jit_mods}
    exporters = set(jit_mods)
    changed = True
    while changed:
        changed = False
        for mod, es in edges.items():
            if mod in exporters:
                continue
            for base, name in es:
                if name in jit_names and (base in exporters or f"{base}.{name}" in exporters):
                    exporters.add(mod)
                    changed = True
                    break
    hosts = set(exporters)
    for mod, es in edges.items():
        text = texts[mod]
        if mod in hosts or not has_launch_token(text):
            continue
        if TRITON_IMPORT.search(text) or any(
                (name is None and base in exporters)
                or (name is not None and f"{base}.{name}" in exporters) for base, name in es):
            hosts.add(mod)
    return hosts
