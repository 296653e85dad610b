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


def _names(clause: str) -> list[str]:
    clause = _COMMENT.sub("", clause).replace("\\\n", " ").strip("() \t\n")
    out = []
    for item in clause.split(","):
        words = item.split()
        if words:
            out.append(words[0])
    return out


def import_edges(text: str, module: str, is_pkg: bool) -> list[tuple[str, str | None]]:
    """(module, name or None) pairs this file imports, found by regex."""
    edges: list[tuple[str, str | None]] = []
    if "import" not in text:
        return edges
    for m in _FROM.finditer(text):
        base = resolve_relative(module, is_pkg, len(m.group(1)), m.group(2))
        for name in _names(m.group(3)):
            edges.append((base, name))
    for m in _IMPORT.finditer(text):
        for name in _names(m.group(1)):
            edges.append((name, None))
    return edges


def host_modules(texts: dict[str, str], pkgs: set[str], jit_mods: set[str],
                 jit_names: set[str]) -> set[str]:
    """Modules that may launch kernels: the jit modules and their importers.

    A module that imports a kernel *name* from an exporting module becomes an
    exporter too (package ``__init__`` re-exports), up to a fixpoint.
    """
    edges = {m: import_edges(t, m, m in pkgs) for m, t in texts.items()
             if m not in jit_mods}
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
    hosts = set(jit_mods)
    for mod, es in edges.items():
        for base, name in es:
            if base in exporters or (name is not None and f"{base}.{name}" in exporters):
                hosts.add(mod)
                break
    return hosts
