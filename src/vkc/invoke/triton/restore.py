"""Index buffers a kernel reads and writes back: restored before every timed launch.

A kernel that updates its own integer inputs in place (the rejection sampler's
``_insert_resampled_kernel`` increments ``num_sampled``, which it also uses as an offset) sees
different contents at each repetition of the timing loop; after enough of them its indices leave
their targets.  vLLM launches it once per step on fresh contents, so the example restores those
buffers to the contents it built (outside the timed region) before every warm-up and timed launch.
Found statically: the entry function's pointer parameters that appear in both a ``tl.load`` and a
``tl.store`` / ``tl.atomic_*`` address, viewing an integer buffer.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping

from .plan import LaunchConfig, TensorView

__all__ = ["read_written_params", "restored_buffers"]

_WRITES = {"store", "atomic_add", "atomic_and", "atomic_cas", "atomic_max", "atomic_min", "atomic_or",
           "atomic_xchg", "atomic_xor"}


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def read_written_params(source: str, entry: str) -> frozenset[str]:
    """The parameters of ``entry`` (a function of ``source``) used in both a load and a store address."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    leaf = entry.rsplit(".", 1)[-1]
    fn = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == leaf), None)
    if fn is None:
        return frozenset()
    params = {a.arg for a in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs)}
    loads: set[str] = set()
    writes: set[str] = set()
    for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
        if not isinstance(call.func, ast.Attribute):
            continue
        attr = call.func.attr
        addr = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "pointer"), None)
        if addr is None:
            continue
        if attr == "load":
            loads |= _names(addr)
        elif attr in _WRITES:
            writes |= _names(addr)
    return frozenset(params & loads & writes)


def restored_buffers(configs: Mapping[str, LaunchConfig], params: frozenset[str]) -> dict[str, list[str]]:
    """Per configuration, the integer buffers viewed by ``params`` (sorted); configurations without any
    are left out, so a kernel that updates no index buffer renders no restore step."""
    out: dict[str, list[str]] = {}
    for name, cfg in configs.items():
        ints = {b.name for b in cfg.buffers if b.dtype.startswith(("int", "uint"))}
        got = sorted({a.base for a in cfg.args if isinstance(a, TensorView) and a.param in params} & ints)
        if got:
            out[name] = got
    return out
