"""References harvested from vLLM's kernel tests, with the mapping derived, not written by hand.

A test under ``tests/kernels`` that calls the kernel's wrapper ``W`` and compares what ``W``
produced against a PyTorch computation (``torch.testing.assert_close(got, want, ...)``,
``torch.allclose``, ``torch.equal``) holds the reference: the statements of the test body that
compute ``want`` (its backward slice), as a function of the test's tensors that ``W`` passes to the
kernel.  The mapping is the chain of the three calls, by parameter names:

    test local --(W's call in the test)--> W's parameter --(W's kernel[grid](...) launch)--> kernel parameter

(:mod:`.wrapper_map`), and ``got`` (W's result, unpacked, or an in-place buffer) names the kernel
output the same way.  Refused, with the reason: a ``want`` that needs a tensor the kernel does not
receive (random data, a value read back from W's result), a statement that is not a plain
assignment, a name rebound or mutated, a vLLM object left unextracted.  Constants of the test's
``W`` call that reach the kernel become ``requires`` (so do the defaults of ``W``'s parameters the test
leaves out); tolerances are the assertion's own (:mod:`.harvest_compare`), else the defaults of the
comparison function used.  The less plain shapes of a test -- a comparison helper of the test module,
``W`` called inside the comparison, a fresh expected tensor written into, ``W(*args)`` of a literal, a copy
handed to ``W`` -- are the rules of :mod:`.harvest_rules`, each refusing where it does not hold.
"""
from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vkc.reference.harvest_compare import ASSERT_CLOSE_DEFAULTS, tolerance
from vkc.reference.harvest_compare import number as module_number
from vkc.reference.harvest_defs import local_number, plain_defs, reaching_def, stable_between
from vkc.reference.harvest_rules import (
    NoHarvest,
    fresh,
    mutations,
)
from vkc.reference.harvest_test import (
    RESULT,
    ParsedTest,
    bind,
    compares,
    comprehension_locals,
    copies,
    got_name,
    leaf_name,
    load_test,
    mutated,
    names,
    results_of,
    single_return,
    spread,
    wrapper_call,
)
from vkc.reference.records import Output, RefSpec
from vkc.reference.wrapper_map import WrapperLaunch

RANDOM = frozenset({"randn", "rand", "randint", "randn_like", "rand_like", "randint_like", "randperm", "normal_",
                    "uniform_", "random_", "bernoulli", "multinomial", "exponential_", "empty", "empty_like",
                    "manual_seed", "set_random_seed", "seed_everything", "cauchy_", "geometric_"})
LITERAL_TENSORS = frozenset({"tensor", "as_tensor", "from_numpy"})
DEVICE_NAMES = frozenset({"DEVICE", "device", "CUDA_DEVICE"})


@dataclass(frozen=True)
class Harvested:
    spec: RefSpec
    node: ast.FunctionDef            # the synthesized reference, resolved in ``spec.file``'s module
    tolerances: tuple[tuple[str, tuple[tuple[str, float, float], ...], str], ...]  # param, table, origin


def param_value(text: str) -> str | None:
    """A test parameter's value text (from the test id) as a Python expression, or None."""
    if re.fullmatch(r"(torch\.)?(b?float\d+|float8_\w+|int\d+|uint\d+|bool|half|bfloat16)", text):
        return text if text.startswith("torch.") else f"torch.{text}"
    try:
        return repr(ast.literal_eval(text))
    except (ValueError, SyntaxError):
        return None


def _slice(t: ParsedTest, wants: list[ast.expr], upto: list[int], inputs: Mapping[str, str], call_index: int,
           results: set[str], inplace: set[str]) -> tuple[list[ast.stmt], list[str]]:
    """The test statements (before each want's ``upto``) that compute ``wants``, and the free names left.  A name
    W produced (``results``), or an in-place output read after W's call, refuses."""
    keep: set[int] = set()
    free: list[str] = []
    todo = [(n, at) for w, at in zip(wants, upto) for n in names(w) if n not in comprehension_locals(w)]
    seen: set[tuple[str, int | None, int | None]] = set()
    params = {a.arg for a in t.fn.args.args + t.fn.args.kwonlyargs}
    while todo:
        name, reader = todo.pop(0)
        if name in results or (name in inplace and reader > call_index):
            raise NoHarvest(f"the expected value reads {name} after the wrapper produced or wrote it")
        if name in inputs and not stable_between(t.body, t.stores, name, reader, call_index):
            raise NoHarvest(f"the expected value reads {name} bound otherwise than when the wrapper reads it")
        i = None if name in inputs or name in DEVICE_NAMES else reaching_def(t.body, t.stores, name, reader)
        if (name, i, reader if mutated(t, name) else None) in seen:
            continue
        seen.add((name, i, reader if mutated(t, name) else None))
        if i is None and (name in inputs or name not in t.stores or name in DEVICE_NAMES or (
                name in params and plain_defs(t.body, t.stores, name) is not None)):
            free.append(name)   # a test parameter read before the test rebinds it: its value
            continue
        writes: list[int] | None = []
        if i is not None and mutated(t, name):   # a fresh local written into by plain statements
            writes = mutations(t.body, name, i, reader) if fresh(t.body[i].value) else None  # type: ignore[attr-defined]
        if i is None or writes is None:
            raise NoHarvest(f"{name} is not assigned by plain top-level statements of the test only")
        value = t.body[i].value  # type: ignore[attr-defined]
        rnd = sorted({leaf_name(n.func) or "" for n in ast.walk(value) if isinstance(n, ast.Call)} & RANDOM)
        if rnd:
            raise NoHarvest(f"{name} is made by {rnd[0]}: data the kernel does not receive")
        if any(isinstance(n, ast.Call) and leaf_name(n.func) in LITERAL_TENSORS for n in ast.walk(value)):
            raise NoHarvest(f"{name} is a tensor the test wrote out for its own inputs")
        keep.add(i)
        todo.extend((n, i) for n in names(value) if n not in comprehension_locals(value))
        for j in writes:
            keep.add(j)
            todo.extend((n, j) for n in names(t.body[j]) if n != name and n not in comprehension_locals(t.body[j]))
    return [t.body[i] for i in sorted(keep)], free


def _targets(target: ast.expr) -> list[str]:
    """The names an assignment target binds: ``x`` or a flat tuple ``a, b`` of names ([] otherwise)."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)) and all(isinstance(e, ast.Name) for e in target.elts):
        return [e.id for e in target.elts]  # type: ignore[attr-defined]
    return []


def _cast(got: ast.expr) -> bool:
    while isinstance(got, ast.Call) and isinstance(got.func, ast.Attribute):
        if got.func.attr in ("float", "to", "double"):
            return True
        got = got.func.value
    return False


def harvest(root: Path, kernel: str, w: WrapperLaunch, rel: str, function: str,
            params: Mapping[str, str] | None) -> Harvested:
    """The reference test ``rel::function`` holds for ``kernel`` launched through ``w``.  ``params``:
    the test's parameter values when the example is that test's own launch, else None."""
    t = load_test(root, rel, function)
    index, call = wrapper_call(t, w.function)
    bound = bind(spread(t, call, index), w)
    inputs: dict[str, str] = {}        # test local -> kernel parameter
    requires: list[tuple[str, Any]] = []
    for wparam, expr in bound.items():
        kparam = w.to_kernel.get(wparam)
        if isinstance(expr, ast.Name) and kparam is not None:
            inputs.setdefault(expr.id, kparam)
        elif isinstance(expr, ast.Constant) and kparam is not None and (
                expr.value is None or isinstance(expr.value, (bool, int, float, str))):
            requires.append((kparam, expr.value))   # None: the launch passes None there too
        elif params is None and not isinstance(expr, ast.Name):
            raise NoHarvest(f"the test passes {ast.unparse(expr)} as {wparam}, which does not reach the kernel as is")
    for wparam, default in w.defaults.items():   # a parameter the test leaves at its default: that value
        kparam = w.to_kernel.get(wparam)
        if wparam in bound or kparam is None:
            continue
        if not (isinstance(default, ast.Constant) and (default.value is None or isinstance(
                default.value, (bool, int, float, str)))):
            raise NoHarvest(f"the test leaves {w.function}'s {wparam} at its default {ast.unparse(default)}, "
                            "which reaches the kernel as an expression")
        requires.append((kparam, default.value))
    copies(t, inputs, index)
    results = results_of(t, index, call, w)
    whole = single_return(w)
    if whole is not None:
        results[RESULT] = whole
    outputs: dict[str, str] = {**inputs, **results}
    compared: list[tuple[str, ast.expr, ast.Call, int, bool, str]] = []   # kparam, want, call, line index, cast, got
    for i, cmp_, a0, a1 in compares(t, index, call):
        for got, want in ((a0, a1), (a1, a0)):
            name = got_name(got, call)
            if name is None or name not in outputs or name in names(want):
                continue
            if any(n in results for n in names(want)):
                continue
            if all(c[0] != outputs[name] for c in compared):
                compared.append((outputs[name], want, cmp_, i, _cast(got), name))
            break
    compared = [c for c in compared if not _identity(t, c[1], c[5])]
    if not compared:
        raise NoHarvest(f"{rel}::{function} compares nothing the kernel writes against a computation")
    inplace = {c[5] for c in compared if c[5] in inputs and c[5] not in results}
    stmts, free = _slice(t, [c[1] for c in compared], [c[3] for c in compared], inputs, index,
                         set(results), inplace)
    if not any(n in inputs for n in free):
        raise NoHarvest(f"{rel}::{function}'s expected value reads no tensor the kernel receives (a constant the "
                        "test wrote for its own inputs)")
    return _assemble(t, kernel, compared, stmts, free, inputs, params, requires, w)


def _assemble(t: ParsedTest, kernel: str, compared: list[tuple[str, ast.expr, ast.Call, int, bool, str]],
              stmts: list[ast.stmt], free: list[str], inputs: Mapping[str, str],
              params: Mapping[str, str] | None, requires: list[tuple[str, Any]], w: WrapperLaunch) -> Harvested:
    test_params = {a.arg for a in t.fn.args.args + t.fn.args.kwonlyargs}
    args: list[tuple[str, str]] = []
    for name in free:
        if name in inputs:
            args.append((name, f"a[{inputs[name]!r}]"))
        elif name in DEVICE_NAMES:
            args.append((name, "torch.get_default_device()"))
        elif name in test_params:
            text = (params or {}).get(name)
            value = param_value(text) if text is not None else None
            if value is None:
                raise NoHarvest(f"the expected value needs the test parameter {name}, whose value this launch "
                                "does not give" + (f" ({text!r})" if text else ""))
            if value.startswith(("(", "[", "{")) and any(
                    isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == name
                    for e in [*stmts, *(c[1] for c in compared)] for n in ast.walk(e)):
                raise NoHarvest(f"the expected value reads attributes of the test parameter {name}, an object whose "
                                f"test id gives only its fields ({text!r})")
            args.append((name, value))
    wants = [c[1] for c in compared]
    ret = wants[0] if len(wants) == 1 else ast.Tuple(elts=wants, ctx=ast.Load())
    name = f"{t.fn.name}_reference"
    node = ast.FunctionDef(name=name, args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=n) for n, _e in args],
                                                          kwonlyargs=[], kw_defaults=[], defaults=[]),
                           body=[*stmts, ast.Return(value=ret)], decorator_list=[], returns=None, type_comment=None,
                           lineno=t.fn.lineno, col_offset=0)
    ast.fix_missing_locations(node)
    outputs: list[Output] = []
    tols: list[tuple[str, tuple[tuple[str, float, float], ...], str]] = []
    values = {p: v for p, text in (params or {}).items() if (v := param_value(text)) is not None}

    def number(name: str, at: int) -> float | None:   # a test local at the comparison, else a module constant
        if name in t.stores:
            return local_number(t.body, t.stores, name, at, values)
        return module_number(t.tree, ast.Name(id=name, ctx=ast.Load()))

    for k, (kparam, _want, cmp_, i, cast, got) in enumerate(compared):
        table, origin = tolerance(t.tree, cmp_, f"{t.rel}:{cmp_.lineno}", cast, functools.partial(_at, number, i),
                                   values)
        # W's own torch.empty output (returned to the test), or a test tensor made by torch.empty
        poison = (got not in inputs and kparam in {w.to_kernel[n] for n in w.empty}) or (
            got in inputs and _made_empty(t, got))
        outputs.append(Output(kparam, None if len(compared) == 1 else k, poison=poison))
        tols.append((kparam, table, origin))
    spec = RefSpec(kernel=kernel, source="test-reference", file=t.rel, function=name, args=tuple(args),
                   outputs=tuple(outputs), requires=tuple(requires),
                   note=(f"harvested from {t.rel}::{t.fn.name} (vkc.reference.harvest): the statements computing "
                         f"what it compares against {w.function}'s result; mapping test tensor -> {w.function} "
                         f"parameter -> kernel parameter ({w.file})"))
    return Harvested(spec, node, tuple(tols))


def _at(number: Callable[[str, int], float | None], at: int, name: str) -> float | None:
    return number(name, at)


def _identity(t: ParsedTest, want: ast.expr, got: str) -> bool:
    """``want`` is a copy of ``got`` taken before the call (the test checks W left it alone)."""
    if isinstance(want, ast.Name):
        value = next((s.value for s in t.body if isinstance(s, ast.Assign) and len(s.targets) == 1
                      and isinstance(s.targets[0], ast.Name) and s.targets[0].id == want.id), None)
        if value is None:
            return False
        want = value
    return got_name(want) == got or (isinstance(want, ast.Call) and isinstance(want.func, ast.Attribute)
                                      and want.func.attr == "clone" and got_name(want.func.value) == got)


def _made_empty(t: ParsedTest, name: str) -> bool:
    for s in t.body:
        if (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
                and s.targets[0].id == name and isinstance(s.value, ast.Call)
                and leaf_name(s.value.func) in ("empty", "empty_like", "new_empty")):
            return True
    return False


__all__ = ["ASSERT_CLOSE_DEFAULTS", "Harvested", "NoHarvest", "harvest", "param_value"]
