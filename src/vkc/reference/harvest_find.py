"""find_harvested: a kernel without a mapping-table row gets the reference a vLLM test holds for it.

The tests come from the traced launch itself when the example is a test's own launch (its plan's
``shapes`` name the test and its parameter values), then from the static reach index of
``tests/kernels`` (:func:`vkc.testtrace.build_reach_index`: tests that call a wrapper launching the
kernel).  Each (launch site, test) pair is tried in order; the first whose harvest maps, whose
extraction is self-contained with nothing left unextracted, and whose mapping holds for every
configuration of the launch wins.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from vkc.records import KernelEntry, SourceTree
from vkc.reference.extract import Refused, extract_function
from vkc.reference.harvest import Harvested, NoHarvest, harvest
from vkc.reference.launch import LaunchFacts, check_launch
from vkc.reference.records import Reference, ReferenceLookup, Tolerance
from vkc.reference.wrapper_map import WrapperLaunch, wrapper_launch

MAX_TRIES = 12


def _entry(tree: SourceTree, kernel: str) -> tuple[KernelEntry, tuple[KernelEntry, ...]] | None:
    from vkc.index import build_index

    kernels = build_index(tree).kernels
    for k in kernels:
        if k.lang == "triton" and (k.qualified or f"{k.module}:{k.qualname}") == kernel:
            return k, kernels
    return None


def _own_test(configs: Sequence[LaunchFacts]) -> tuple[str, str, dict[str, str]] | None:
    tests = {str(c.shapes.get("test") or "") for c in configs}
    if len(tests) != 1 or "" in tests:
        return None
    rel, _, fn = next(iter(tests)).partition("::")
    params = {k: str(v) for k, v in configs[0].shapes.items() if k != "test"}
    return rel, fn.split("[", 1)[0], params


def _candidates(tree: SourceTree, entry: KernelEntry, kernels: tuple[KernelEntry, ...],
                configs: Sequence[LaunchFacts]) -> list[tuple[str, str, str, dict[str, str] | None]]:
    """(wrapper leaf, test file, test function, its parameter values or None), own test first."""
    from vkc.testtrace import build_reach_index

    out: list[tuple[str, str, str, dict[str, str] | None]] = []
    own = _own_test(configs)
    reaches = build_reach_index(tree, kernels).for_kernel(entry.qualified or f"{entry.module}:{entry.qualname}")
    for r in reaches:
        if r.via is not None:
            continue
        leaf = r.wrapper.rsplit(":", 1)[-1]
        if own is not None and (r.test.file, r.test.function) == own[:2]:
            out.insert(0, (leaf, r.test.file, r.test.function, own[2]))
        else:
            out.append((leaf, r.test.file, r.test.function, None))
    seen: set[tuple[str, str, str]] = set()
    uniq = []
    for c in out:
        if c[:3] not in seen:
            seen.add(c[:3])
            uniq.append(c)
    return uniq


def _constexprs_from_c(h: Harvested, configs: Sequence[LaunchFacts]) -> Harvested:
    """``a['X']`` -> ``c['X']`` for a kernel parameter every configuration passes as a constexpr."""
    if not configs:
        return h
    const = frozenset.intersection(*(c.constexprs for c in configs))
    args = tuple((n, f"c[{e[3:-2]!r}]" if e.startswith("a['") and e[3:-2] in const else e) for n, e in h.spec.args)
    return dataclasses.replace(h, spec=dataclasses.replace(h.spec, args=args))


def _reference(tree: SourceTree, h: Harvested) -> Reference | str:
    try:
        ex = extract_function(tree.root, h.spec.file, h.node, {})
    except Refused as e:
        return f"{h.spec.file}: the harvested reference cannot be extracted self-contained: {e}"
    if ex.stubs:
        return f"{h.spec.file}: the harvested reference reaches vLLM objects vkc does not extract: {', '.join(ex.stubs)}"
    per = tuple((param, Tolerance(table, origin)) for param, table, origin in h.tolerances)
    return Reference(spec=h.spec, code=ex.code, entry=ex.entry, origin=f"{h.spec.file}:{ex.line}",
                     tolerance=per[0][1], output_tolerance=per, imports=ex.imports, pieces=ex.pieces)


def find_harvested(tree: SourceTree, kernel: str, configs: Sequence[LaunchFacts]) -> ReferenceLookup:
    """The first reference a vLLM test holds for ``kernel`` that maps onto this launch, or None with
    the first reason."""
    base = f"no reference mapping for {kernel} in vkc's table (vkc.reference.table)"
    found = _entry(tree, kernel)
    if found is None:
        return ReferenceLookup(None, base)
    entry, kernels = found
    launches: dict[str, WrapperLaunch] = {}
    reasons: list[str] = []
    for s in entry.launch_sites:
        got = wrapper_launch(tree.root, entry, s)
        if isinstance(got, str):
            reasons.append(got)
        elif got.function not in launches:
            launches[got.function] = got
    tries = 0
    for leaf, rel, fn, params in _candidates(tree, entry, kernels, configs):
        w = launches.get(leaf)
        if w is None or tries >= MAX_TRIES:
            continue
        tries += 1
        try:
            h = harvest(tree.root, kernel, w, rel, fn, params)
        except NoHarvest as e:
            reasons.append(f"{rel}::{fn}: {e}")
            continue
        h = _constexprs_from_c(h, configs)
        why = check_launch(h.spec, configs)
        if why:
            reasons.append(f"{rel}::{fn}: {why}")
            continue
        ref = _reference(tree, h)
        if isinstance(ref, str):
            reasons.append(ref)
            continue
        return ReferenceLookup(ref, f"{ref.source} {ref.origin}")
    if not reasons:
        reasons.append("no vLLM test calls a wrapper that launches it")
    return ReferenceLookup(None, f"{base}; not harvested from a test: {reasons[0]}")


__all__ = ["find_harvested"]
