"""Which pointer parameters a Triton kernel only writes (``ast`` over its module's source; nothing runs).

A buffer the kernel never reads needs no contents: whatever vLLM's earlier code left there cannot change
what the launch computes (``_fused_norm_rope_kernel``'s ``topk_indices_ptr``: one program fills the row
with -1; an aligned block table's ``out_ptr``).  The model-traced plan gives such a buffer ``"empty"``
where its producer has no contents rule, instead of refusing the launch, and the header says so.

Conservative by construction: a parameter is write-only only when every use of it, and of every name
derived from it by assignment (``p = p + off``, ``ptrs = base + idx[:, None]``; a name inside a call on the
right-hand side is a use, not a derivation), is inside the pointer
expression (the first argument or ``pointer=``) of ``tl.store``.  Any other use -- a ``tl.load``, an
atomic (it reads), a block pointer or tensor descriptor, a call to a helper, a comparison, a return --
counts as a read, except reading the pointer's element type (``tl.store(p, x.to(p.dtype.element_ty))``:
the ``dtype`` attribute is compile-time metadata, no memory access).  ``if`` branches on a constexpr the launch fixes (``if SINGLE_TILE:``) are pruned first, as
Triton compiles only the branch taken.  A kernel whose source is not found or does not parse: no parameter is
write-only.
"""
from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["kernel_source", "write_only_params"]


def _is_store(call: ast.Call) -> bool:
    f = call.func
    return isinstance(f, ast.Attribute) and f.attr == "store" and isinstance(f.value, ast.Name) \
        and f.value.id in ("tl", "language")


def _store_pointer(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg == "pointer"), None)


def _names(node: ast.AST) -> set[str]:
    """The names ``node`` reads directly: not those inside a call (``tl.load(p + i)`` is data, no pointer
    derived from ``p``; the call itself is a use of ``p``)."""
    inner = {id(x) for c in ast.walk(node) if isinstance(c, ast.Call) for x in ast.walk(c)}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in inner}


def _derived(fn: ast.FunctionDef, params: Sequence[str]) -> dict[str, str]:
    """name -> the parameter it is derived from (by plain assignment), to a fixed point."""
    owner = {p: p for p in params}
    changed = True
    while changed:
        changed = False
        for node in ast.walk(fn):
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                srcs = {owner[n] for n in _names(node.value) if n in owner}
                if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name) and node.target.id in owner:
                    srcs.add(owner[node.target.id])
                if len(srcs) != 1:
                    continue
                src = next(iter(srcs))
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name) and n.id not in owner:
                            owner[n.id] = src
                            changed = True
    return owner


def _known_test(test: ast.expr, constexprs: Mapping[str, Any]) -> bool | None:
    """The value of an ``if`` test that names one constexpr (``if FLAG:`` / ``if not FLAG:``), else None."""
    neg = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    node = test.operand if isinstance(test, ast.UnaryOp) and neg else test
    if isinstance(node, ast.Name) and node.id in constexprs and isinstance(constexprs[node.id], (bool, int)):
        return bool(constexprs[node.id]) != neg
    return None


class _Prune(ast.NodeTransformer):
    """Replaces each ``if`` on a constexpr by the branch this launch takes (Triton compiles only that one)."""

    def __init__(self, constexprs: Mapping[str, Any]) -> None:
        self.constexprs = constexprs

    def visit_If(self, node: ast.If) -> Any:
        self.generic_visit(node)
        taken = _known_test(node.test, self.constexprs)
        if taken is None:
            return node
        return (node.body if taken else node.orelse) or ast.Pass()


def _function(tree: ast.Module, kernel: str) -> ast.FunctionDef | None:
    """The function ``kernel`` names: by its qualified name (``CombineTopkSwaIndicesKernel.kernel``, a
    static method: DeepSeek-V4's kernel classes each have a ``kernel``), else the one function of its leaf name."""
    body: list[ast.stmt] = list(tree.body)
    found: ast.AST | None = None
    for part in kernel.split("."):
        named = [n for n in body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part]
        if len(named) > 1:              # defined twice: ambiguous, no answer
            return None
        found = named[0] if named else None
        if found is None:
            break
        body = list(found.body)
    if isinstance(found, ast.FunctionDef):
        return found
    leaf = kernel.rsplit(".", 1)[-1]
    fns = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == leaf]
    return fns[0] if len(fns) == 1 else None


def write_only_params(source: str, kernel: str, params: Sequence[str],
                      constexprs: Mapping[str, Any] | None = None, *, unused: bool = False) -> frozenset[str]:
    """The parameters of ``kernel`` (a function name in ``source``, a module) that it only stores to, at a
    launch with ``constexprs`` (branches on them pruned as Triton prunes them); with ``unused``, also those it
    does not touch at all there (DeepSeek-V4's ``left_visible_ptr`` without ``HAS_IMAGE``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return frozenset()
    fn = _function(tree, kernel)
    if fn is None:
        return frozenset()
    if constexprs:
        fn = _Prune(constexprs).visit(fn)
    fparams = [a.arg for a in fn.args.args]
    want = [p for p in params if p in fparams]
    owner = _derived(fn, want)
    stored: set[str] = set()
    allowed: set[int] = set()       # ids of Name nodes inside a store's pointer expression
    assign_lhs: set[int] = set()    # ids of Name nodes that are assignment targets or propagation sources
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and _is_store(node):
            ptr = _store_pointer(node)
            if ptr is not None:
                nested = {id(x) for c in ast.walk(ptr) if isinstance(c, ast.Call) for x in ast.walk(c)}
                for n in ast.walk(ptr):
                    if isinstance(n, ast.Name) and n.id in owner and id(n) not in nested:
                        allowed.add(id(n))
                        stored.add(owner[n.id])
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            tnames = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
            srcs = {owner[n] for n in _names(node.value) if n in owner}
            if tnames and all(t in owner for t in tnames) and len(srcs) == 1:
                for t in targets:
                    assign_lhs.update(id(n) for n in ast.walk(t) if isinstance(n, ast.Name))
                in_call = {id(n) for c in ast.walk(node.value) if isinstance(c, ast.Call) for n in ast.walk(c)}
                assign_lhs.update(id(n) for n in ast.walk(node.value)
                                  if isinstance(n, ast.Name) and n.id in owner and id(n) not in in_call)
    # ``p.dtype`` (``p.dtype.element_ty``): the pointer's type, known at compile time, not a load
    typed = {id(n.value) for n in ast.walk(fn) if isinstance(n, ast.Attribute) and n.attr == "dtype"
             and isinstance(n.value, ast.Name)}
    read: set[str] = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in owner and id(n) not in allowed \
                and id(n) not in assign_lhs and id(n) not in typed:
            read.add(owner[n.id])
    return frozenset(p for p in want if (p in stored or unused) and p not in read)


def kernel_source(root: Path, qualified: str) -> str | None:
    """The source of the module that defines ``module:qualname`` in the tree at ``root``, or None."""
    from vkc.extract.triton.modinfo import module_file

    found = module_file(root, qualified.split(":", 1)[0])
    if found is None:
        return None
    try:
        return found[0].read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
