"""Platform-only modules: vLLM's static import graph, each import site tagged with its platform guard.

A Triton kernel is not built for CUDA when the module defining it is never imported on
CUDA, e.g. ``vllm/models/inkling/amd/model.py``, imported only inside
``if current_platform.is_rocm():``.  :func:`platform_only_modules` finds those modules
statically (vLLM is never imported).

Rules:

* Import sites: ``import a.b`` (``a`` and ``a.b``), ``from a.b import c`` (``a``, ``a.b``
  and ``a.b.c`` when it is a module), relative imports, star imports, and
  ``importlib.import_module("literal")`` (``package=`` a literal or ``__name__`` /
  ``__package__``).  Sites in function and class bodies count (a lazy import in
  ``__getattr__`` is an import of the module).  Only modules under ``vllm/`` are nodes.
* The guard of a site is the conjunction of its enclosing ``if``/``elif``/``else`` tests
  (at any depth, also inside functions), plus the negated test of an earlier ``if`` of the
  same block whose body ends in ``return``/``raise``/``continue``/``break`` and has no
  ``else`` (``if is_rocm(): ...; return`` -> what follows is the CUDA path).  Each test is
  evaluated as the CUDA runtime sees it: ``TYPE_CHECKING`` is False, a test whose text
  names a non-CUDA platform (``_NON_CUDA`` of :mod:`vkc.index.triton_scopes`:
  ``is_rocm()``, ``is_xpu()``, ``is_cpu()``, ``on_gfx9()``, ``VLLM_ROCM_*``, ...) is False
  (True for ``!=``/``is not``/``not in`` compares), ``is_cuda()``/``is_cuda_alike()`` are
  True, anything else is unknown; ``not``/``and``/``or`` in three-valued logic.
* A site is *cuda* when its guard is not False on CUDA; *platform* when it is False on
  CUDA but not at every runtime (a platform test decides it); *dead* when it is False at
  any runtime (only under ``TYPE_CHECKING``): dead sites are dropped.
* CUDA-reachable: every module with no live import from another module (entry points,
  modules vLLM loads by computed name) and everything reachable from those through cuda
  sites.  A module is **platform-only** when it is not CUDA-reachable and is reachable
  (through live sites) from the target of a platform site, or when it lies in a
  platform-only package (the package runs first: ``amd/ops/silu_and_mul.py``, loaded only
  through a computed ``import_module`` name, follows ``amd/ops``).  Self-imports and imports
  of a package from its own submodules (which run only after it) are ignored.

The import sites and their guards come from :mod:`vkc.index.platform_sites` (a few
seconds at most on the whole tree, about 1.6 s of CPU on 0.33.0: it parses only the pieces of
files that can hold a guarded site).
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterable, Mapping

from vkc.index.platform_sites import Site, import_sites


def platform_only_modules(paths: Mapping[str, str], texts: Mapping[str, str], pkgs: set[str],
                          trees: Mapping[str, ast.Module] | None = None,
                          edges: Mapping[str, list[tuple[str, str | None]]] | None = None) -> dict[str, str]:
    """Platform-only module -> why (the deciding guard and where it is)."""
    return classify(import_sites(paths, texts, pkgs, trees, edges), paths)


def classify(sites: list[Site], modules: Iterable[str]) -> dict[str, str]:
    """The platform-only modules of the graph ``sites`` (see the module docstring), with a note each."""
    mods = sorted(modules)
    out_cuda: dict[str, list[str]] = {}
    out_live: dict[str, list[str]] = {}
    imported: set[str] = set()
    for s in sites:
        if s.src.startswith(s.dst + "."):
            continue        # a submodule imports its own package: loaded before it, never because of it
        imported.add(s.dst)
        out_live.setdefault(s.src, []).append(s.dst)
        if s.kind == "cuda":
            out_cuda.setdefault(s.src, []).append(s.dst)
    inside: set[str] = set()        # roots inside a platform-only package: not entry points on CUDA
    while True:
        notes = _platform_only(mods, sites, out_cuda, out_live, imported | inside)
        more = {m for m in mods if m not in notes and _package_of(m, notes)}
        if not more - inside:
            break
        inside |= more
    for m in mods:
        pkg = _package_of(m, notes)
        if pkg is not None and m not in notes:
            notes[m] = f"in the platform-only package {pkg} ({notes[pkg]})"
    return notes


def _package_of(m: str, notes: Mapping[str, str]) -> str | None:
    """The outermost platform-only package holding ``m``, if any."""
    parts = m.split(".")
    return next((p for i in range(1, len(parts)) if (p := ".".join(parts[:i])) in notes), None)


def _platform_only(mods: list[str], sites: list[Site], out_cuda: Mapping[str, list[str]],
                   out_live: Mapping[str, list[str]], not_roots: set[str]) -> dict[str, str]:
    reach = {m for m in mods if m not in not_roots}
    todo = deque(sorted(reach))
    while todo:
        for d in out_cuda.get(todo.popleft(), ()):
            if d not in reach:
                reach.add(d)
                todo.append(d)
    notes: dict[str, str] = {}
    seed: dict[str, str] = {}
    todo = deque()
    for s in sites:
        if s.kind == "platform" and s.dst not in reach and s.dst not in notes:
            notes[s.dst] = seed[s.dst] = f"imported only under `{s.guard}` in {s.src}"
            todo.append(s.dst)
    while todo:
        m = todo.popleft()
        for d in out_live.get(m, ()):
            if d not in reach and d not in notes:
                seed[d] = seed[m]
                notes[d] = f"imported only by platform-only modules ({m}, {seed[m]})"
                todo.append(d)
    return notes
