"""The Triton scanner: every ``@triton.jit`` / ``@gluon.jit`` function under ``vllm/``.

Static only (Python ``ast``); vLLM is never imported.  Entry: :func:`scan_triton`.

Rules:

* A jit function is a function decorated with ``X.jit`` / ``X.jit(...)`` where
  ``X`` is bound to the ``triton`` or ``gluon`` module (``import triton``,
  ``from vllm.triton_utils import triton``, ``from triton.experimental import
  gluon``), or with ``jit`` imported from a ``triton`` package.  Functions at
  module level, in classes (``Cls.kernel``) and nested in host functions
  (qualname ``outer.kernel``, no ``<locals>``) all count.
* One entry per (module, qualname).  A name defined several times under a
  module-level ``if``/``try`` keeps the definition the CUDA build uses: the
  ``else`` of a ROCm/XPU/CPU test, the body of any other test (``if TRITON3``),
  the ``try`` body; ties go to the later definition.  ``rocm_only`` is set for a
  kernel reached only through the body of a ROCm test.
* ``rocm_only`` is also set, with ``platform_note`` saying why, for every kernel of a
  platform-only module: one vLLM imports only on ROCm, XPU, CPU or another non-CUDA
  platform (its static import graph, :mod:`vkc.index.platform_graph`), such as
  ``vllm/models/*/amd/``.  The field keeps its name: it means "not built for CUDA".
* role: ``entry`` if it has a launch site (see :mod:`vkc.index.triton_launch`),
  else ``helper`` if another jit function references it, else ``orphan``.
"""
from __future__ import annotations

import gc
import re
from dataclasses import dataclass, field

from vkc.index.platform_graph import platform_only_modules
from vkc.index.triton_files import JIT_DECORATOR, has_launch_token, host_modules, import_edges, list_modules
from vkc.index.triton_launch import LaunchCollector
from vkc.index.triton_resolve import Project
from vkc.index.triton_scopes import Key
from vkc.records import KernelEntry, SourceTree


@dataclass
class TritonScan:
    """The scan's result with the facts behind it (for diagnostics and tests)."""
    entries: list[KernelEntry]
    project: Project
    collector: LaunchCollector
    unclassified: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    platform_only: dict[str, str] = field(default_factory=dict)    # module -> why (platform_graph)


def scan_triton(tree: SourceTree) -> list[KernelEntry]:
    """KernelEntry (lang "triton") for every jit function of ``tree``."""
    return run_scan(tree).entries


def run_scan(tree: SourceTree) -> TritonScan:
    gc_was_enabled = gc.isenabled()
    gc.disable()        # many long-lived AST nodes: the cyclic GC only costs time here
    try:
        return _run_scan(tree)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run_scan(tree: SourceTree) -> TritonScan:
    root = tree.root
    paths = list_modules(root)
    texts = {m: (root / rel).read_text(encoding="utf-8", errors="replace")
             for m, rel in paths.items()}
    jit_mods = {m for m, t in texts.items() if "jit" in t and JIT_DECORATOR.search(t)}
    project = Project(root, paths, texts)
    for m in sorted(jit_mods):
        project.module(m)
    edges = {m: import_edges(t, m, m in project.pkgs) for m, t in texts.items()}
    hosts = host_modules(texts, project.pkgs, jit_mods, project.jit_names, edges)
    project.allowed = hosts
    for m in sorted(hosts):
        project.module(m)

    collector = LaunchCollector(project)
    walked: set[str] = set()

    def walk(m: str) -> None:
        info = project.mods.get(m)
        if info is not None and m not in walked:
            walked.add(m)
            collector.walk_module(info)

    for m in sorted(hosts):
        if has_launch_token(texts[m]):
            walk(m)
        elif project.mods.get(m) is not None:
            collector.walk_device_only(project.mods[m])
    for m in sorted(project.mods):
        if project.mods[m] is not None:
            collector.walk_device_only(project.mods[m])     # jit defs nested in skipped code
    while True:
        # code calling a host function that launches one of its parameters
        names = sorted(collector.launcher_names())
        if names:
            calls = re.compile(r"\b(?:" + "|".join(map(re.escape, names)) + r")\s*\(")
            for m in sorted(hosts - walked):
                if calls.search(texts[m]):
                    walk(m)
            collector.walk_skipped(calls)
        if not collector.resolve_indirect():
            break
    collector.resolve_method_refs()
    trees = {m: info.tree for m, info in project.mods.items() if info is not None}
    platform_only = platform_only_modules(paths, texts, project.pkgs, trees, edges)

    entries = []
    unclassified: dict[str, list[tuple[str, int]]] = {}
    for key in sorted(project.jits):
        entry = _entry(project, collector, key, platform_only.get(key[0], ""))
        if entry.role == "orphan":
            refs = collector.host_references(key)
            if refs:
                unclassified[entry.qualified] = refs
        entries.append(entry)
    return TritonScan(entries, project, collector, unclassified, platform_only)


def _entry(project: Project, collector: LaunchCollector, key: Key, platform_note: str) -> KernelEntry:
    d = project.jits[key]
    mod = d.scope.mod
    node = d.node
    sites = tuple(sorted(collector.sites.get(key, {}).values(), key=lambda s: (s.file, s.line, s.form)))
    role = "entry" if sites else "helper" if key in collector.helper_of else "orphan"
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    return KernelEntry(
        lang="triton",
        name=node.name,
        qualname=key[1],
        file=mod.rel,
        line=first,
        end_line=node.end_lineno or node.lineno,
        module=key[0],
        role=role,
        decorators=tuple(mod.segment(dec) for dec in node.decorator_list),
        rocm_only=d.rocm_only or bool(platform_note),
        platform_note=f"{key[0]} is {platform_note}" if platform_note else "",
        launch_sites=sites,
        qualified=f"{key[0]}:{key[1]}",
    )
