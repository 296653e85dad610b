"""find_cuda_reference: vLLM's PyTorch reference for a CUDA example (a :class:`Reference`, or None with the reason).

The CUDA half of :func:`vkc.reference.find_reference`: the rows of :mod:`.cuda_table`, the same
tolerance rules and the same static extraction.  ``key`` is the op of a wrapper-compiled example
(``_C::rms_norm``) or the kernel of a recipe example (``csrc/layernorm_kernels.cu:rms_norm_kernel``, with
the recipe's ``wrapper`` function).  ``names``: the names the example's ``a`` holds (schema arguments /
host variables; None: unchecked, e.g. a bench lookup from an artifact's header); ``values``: the traced
non-tensor arguments of a wrapper-compiled call, for the row's ``requires``.
"""
from __future__ import annotations

import ast
import re
from collections.abc import Collection, Mapping
from typing import Any

from vkc.records import SourceTree
from vkc.reference.cuda_table import CUDA_SPECS
from vkc.reference.extract import Refused, extract_reference
from vkc.reference.find import _tolerances
from vkc.reference.records import EXACT_MODES, Reference, ReferenceLookup, RefSpec

__all__ = ["CUDA_EXPR_NAMES", "cuda_spec_for", "find_cuda_reference"]

CUDA_EXPR_NAMES = frozenset({"a", "v", "ns", "torch", "int", "bool", "float", "None"})
VIEW_NAMES = frozenset({"t", "v", "torch", "int"})
_ARG = re.compile(r"\ba\[['\"](\w+)['\"]\]")


def _wrapper_matches(want: str, wrapper: str) -> bool:
    """``want`` (a function name) is the recipe's wrapper: a whole word of the plan's ``wrapper`` text
    (``csrc/activation_kernels.cu:299 (silu_and_mul via LAUNCH_ACTIVATION_GATE_KERNEL ...)``)."""
    return re.search(rf"(?<![\w:]){re.escape(want)}(?![\w])", wrapper) is not None


def cuda_spec_for(key: str, wrapper: str = "") -> RefSpec | None:
    for spec in CUDA_SPECS:
        if spec.kernel == key and (not spec.wrapper or _wrapper_matches(spec.wrapper, wrapper)):
            return spec
    return None


def _names_ok(expr: str, allowed: frozenset[str], what: str) -> str | None:
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return f"{what}: {expr!r} is not an expression"
    bad = sorted({n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - allowed)
    return f"{what}: {expr!r} names {bad}" if bad else None


def _check_row(spec: RefSpec, names: Collection[str] | None, values: Mapping[str, Any] | None) -> str | None:
    for pname, expr in spec.args:
        why = _names_ok(expr, CUDA_EXPR_NAMES, f"argument {pname}")
        if why:
            return why
    for out in spec.outputs:
        why = _names_ok(out.view, VIEW_NAMES, f"output {out.param}") if out.view else None
        if why:
            return why
    if names is not None:
        used = {m for _n, e in spec.args for m in _ARG.findall(e)} | {o.param for o in spec.outputs}
        missing = sorted(used - set(names))
        if missing:
            return f"the example has no buffer/argument(s) {missing}"
    if values is not None:
        for key, want in spec.requires:
            if key not in values:
                return f"the call has no argument {key} (the mapping needs {key}={want!r})"
            if values[key] != want or type(values[key]) is not type(want):
                return f"{key}={values[key]!r}, the mapping holds only for {key}={want!r}"
    return None


def find_cuda_reference(tree: SourceTree, key: str, *, mode: str | None, wrapper: str = "",
                        names: Collection[str] | None = None,
                        values: Mapping[str, Any] | None = None) -> ReferenceLookup:
    """vLLM's own PyTorch reference for the CUDA example keyed ``key``, extracted self-contained, with the
    mapping from the example's buffers; None with the reason when the mapping is not known to hold."""
    spec = cuda_spec_for(key, wrapper)
    if spec is None:
        extra = f" (wrapper {wrapper})" if wrapper else ""
        return ReferenceLookup(None, f"no CUDA reference mapping for {key}{extra} in vkc's table "
                                     "(vkc.reference.cuda_table)")
    if mode is not None and mode not in EXACT_MODES:
        return ReferenceLookup(None, f"the example is {mode}: its buffers are vkc's conventions, not the wrapper's "
                                     "tensors, so the mapping to the reference's arguments is not known")
    why = _check_row(spec, names, values)
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
