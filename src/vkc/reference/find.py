"""find_reference: the stage's one entry (a :class:`Reference`, or None with the reason)."""
from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vkc.records import SourceTree
from vkc.reference.extract import Refused, extract_reference
from vkc.reference.records import EXACT_MODES, Output, Reference, ReferenceLookup, RefSpec, Tolerance
from vkc.reference.table import REFUSED, SPECS
from vkc.reference.tolerance import stated, vllm_defaults

EXPR_NAMES = frozenset({"a", "c", "ns", "torch"})
_ARG = re.compile(r"\ba\[['\"](\w+)['\"]\]")
_CONST = re.compile(r"\bc\[['\"](\w+)['\"]\]")


@dataclass(frozen=True)
class LaunchFacts:
    """What the reference stage needs of one configuration of the launch (no plan types)."""

    name: str
    values: Mapping[str, Any]        # constexprs and scalar arguments by name
    tensors: frozenset[str]          # parameters passed a tensor
    params: frozenset[str]           # every runtime parameter
    constexprs: frozenset[str] = frozenset()
    shapes: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # the plan's shapes (``test``, its params)


def spec_for(kernel: str) -> RefSpec | None:
    for spec in SPECS:
        if spec.kernel == kernel:
            return spec
    return None


def _check_exprs(spec: RefSpec) -> str | None:
    for name, expr in spec.args:
        try:
            tree = ast.parse(expr, mode="eval")
        except SyntaxError:
            return f"argument {name}: {expr!r} is not an expression"
        bad = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - EXPR_NAMES)
        if bad:
            return f"argument {name}: {expr!r} names {bad}"
    return None


def _check_launch(spec: RefSpec, cfg: LaunchFacts) -> str | None:
    for key, want in spec.requires:
        if key not in cfg.values:
            return f"{cfg.name}: the launch has no {key} (the mapping needs {key}={want!r})"
        if cfg.values[key] != want or type(cfg.values[key]) is not type(want):
            return f"{cfg.name}: {key}={cfg.values[key]!r}, the mapping holds only for {key}={want!r}"
    for p in spec.requires_tensor:
        if p not in cfg.tensors:
            return f"{cfg.name}: {p} is not a tensor in this launch"
    used_args = {m for _n, e in spec.args for m in _ARG.findall(e)}
    used_consts = {m for _n, e in spec.args for m in _CONST.findall(e)}
    missing = sorted(used_args - cfg.params)
    if missing:
        return f"{cfg.name}: the kernel has no parameter(s) {missing}"
    missing = sorted(m for m in used_consts if m not in cfg.values)
    if missing:
        return f"{cfg.name}: the launch has no constexpr(s) {missing}"
    for out in spec.outputs:
        if out.param not in cfg.tensors:
            return f"{cfg.name}: output {out.param} is not a tensor in this launch"
    return None


def _tolerances(tree: SourceTree, spec: RefSpec) -> tuple[Tolerance, tuple[tuple[str, Tolerance], ...]] | str:
    if spec.tolerance:
        if len(spec.tolerance_at) != len(spec.tolerance):
            return "tolerance rows and their lines differ in number"
        for (_d, atol, rtol), at in zip(spec.tolerance, spec.tolerance_at):
            if not stated(tree.root, at, atol, rtol):
                return f"atol={atol} rtol={rtol} are not stated at {at} in this tree"
        rows = [f"{at} ({d})" if len(spec.tolerance) > 1 else at for (d, _a, _r), at in zip(spec.tolerance, spec.tolerance_at)]
        tol = Tolerance(spec.tolerance, "test: " + ", ".join(rows))
    else:
        found = vllm_defaults(tree.root, spec.ir_op)
        if found is None:
            return "the tree has no vllm/ir/tolerances.py DEFAULT_TOLERANCES"
        tol = found
    per: list[tuple[str, Tolerance]] = []
    for out in spec.outputs:
        if out.tol is None:
            per.append((out.param, tol))
            continue
        if out.tol_at is None or not stated(tree.root, out.tol_at, *out.tol):
            return f"{out.param}: atol/rtol {out.tol} are not stated at {out.tol_at} in this tree"
        per.append((out.param, Tolerance((("default", *out.tol),), f"test: {out.tol_at}")))
    return tol, tuple(per)


def find_reference(tree: SourceTree, kernel: str, *, mode: str | None,
                   configs: Sequence[LaunchFacts] = ()) -> ReferenceLookup:
    """vLLM's own PyTorch reference for ``kernel`` (qualified), extracted self-contained, with the
    mapping from the launch's arguments; None with the reason when the mapping is not known to hold."""
    if kernel in REFUSED:
        return ReferenceLookup(None, REFUSED[kernel])
    spec = spec_for(kernel)
    if mode is not None and mode not in EXACT_MODES:
        return ReferenceLookup(None, f"the example is {mode}: its buffers are vkc's conventions, not the wrapper's "
                                     "tensors, so the mapping to the reference's arguments is not known")
    if spec is None:
        from vkc.reference.harvest_find import find_harvested

        return find_harvested(tree, kernel, configs)
    why = _check_exprs(spec)
    for cfg in configs:
        why = why or _check_launch(spec, cfg)
    if why:
        return ReferenceLookup(None, why)
    tols = _tolerances(tree, spec)
    if isinstance(tols, str):
        return ReferenceLookup(None, tols)
    try:
        ex = extract_reference(tree.root, spec.file, spec.function, dict(spec.bind))
    except Refused as e:
        return ReferenceLookup(None, f"{spec.file}:{spec.function} cannot be extracted self-contained: {e}")
    unused = sorted({n for n, _e in spec.bind} - {p.split(" ")[0] for p in ex.code.splitlines() if " = " in p})
    if unused:
        return ReferenceLookup(None, f"bound name(s) {unused} are not reached by {spec.function}")
    ref = Reference(spec=spec, code=ex.code, entry=ex.entry, origin=f"{spec.file}:{ex.line}", tolerance=tols[0],
                    output_tolerance=tols[1], imports=ex.imports, pieces=ex.pieces, stubs=ex.stubs)
    return ReferenceLookup(ref, f"{spec.source} {ref.origin}")


def outputs_literal(ref: Reference, dtypes: Mapping[str, Sequence[str]] | None = None,
                    ) -> list[tuple[str, int | None, bool, dict[str, tuple[float, float]]]]:
    """The example's ``REFERENCE_OUTPUTS`` literal: (param, index, poison, tolerance by dtype);
    with ``dtypes`` (output parameter -> its dtypes in the launch) only those rows are kept."""
    per = dict(ref.output_tolerance)
    out: list[tuple[str, int | None, bool, dict[str, tuple[float, float]]]] = []
    o: Output
    for o in ref.spec.outputs:
        table = per[o.param].to_literal()
        if dtypes is not None and o.param in dtypes:
            table = {d: per[o.param].for_dtype(d) for d in dtypes[o.param]}
        out.append((o.param, o.index, o.poison, table))
    return out


def check_launch(spec: RefSpec, configs: Sequence[LaunchFacts]) -> str | None:
    """Why ``spec``'s mapping does not hold for the launch's configurations (None: it holds)."""
    for cfg in configs:
        why = _check_launch(spec, cfg)
        if why:
            return why
    return None


__all__ = ["LaunchFacts", "check_launch", "find_reference", "outputs_literal", "spec_for"]
