"""find_reference: the stage's one entry (a :class:`Reference`, or None with the reason)."""
from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence

from vkc.records import SourceTree
from vkc.reference.extract import Refused, extract_reference
from vkc.reference.launch import LaunchFacts, check_launch
from vkc.reference.records import EXACT_MODES, Output, Reference, ReferenceLookup, RefSpec, Tolerance
from vkc.reference.table import REFUSED, SPECS
from vkc.reference.tolerance import stated, vllm_defaults

EXPR_NAMES = frozenset({"a", "c", "ns", "torch"})


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
    why = _check_exprs(spec) or check_launch(spec, configs)
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


__all__ = ["LaunchFacts", "check_launch", "find_reference", "outputs_literal", "spec_for"]
