"""AST helpers for the Triton side of the rubric."""
from __future__ import annotations

import ast

# decorators that make a Triton/Gluon kernel, as written
_JIT_SPELLINGS = frozenset({"triton.jit", "gluon.jit", "triton.experimental.gluon.jit"})
# top-level modules a Triton source_code may import besides triton (pure stdlib, no side effects)
STDLIB_OK = frozenset({"__future__", "math", "typing"})
# torch calls that allocate tensors
_ALLOC = frozenset({
    "empty", "zeros", "ones", "full", "rand", "randn", "randint", "arange", "linspace", "tensor",
    "empty_like", "zeros_like", "ones_like", "full_like", "rand_like", "randn_like", "empty_strided",
})


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def import_aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> fully dotted name it was imported as."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    out[a.asname] = a.name
                else:
                    head = a.name.split(".")[0]
                    out[head] = head
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _is_jit(spelled: str, aliases: dict[str, str]) -> bool:
    if spelled in _JIT_SPELLINGS:
        return True
    head, _, rest = spelled.partition(".")
    full = aliases.get(head, head) + (f".{rest}" if rest else "")
    return full in _JIT_SPELLINGS or (full.startswith("triton.") and full.endswith(".jit"))


def jit_functions(tree: ast.AST) -> list[str]:
    """Names of functions decorated with a Triton/Gluon ``jit`` (bare or called)."""
    aliases = import_aliases(tree)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                spelled = dotted(dec.func if isinstance(dec, ast.Call) else dec)
                if spelled and _is_jit(spelled, aliases):
                    names.append(node.name)
                    break
    return names


def _is_main_guard(test: ast.AST) -> bool:
    return (isinstance(test, ast.Compare)
            and any(isinstance(n, ast.Name) and n.id == "__name__" for n in [test.left, *test.comparators]))


def _module_level_nodes(tree: ast.Module):
    """Every node outside function, lambda and class bodies."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def host_code_findings(tree: ast.Module) -> list[str]:
    """Host code in a Triton source: main guards, main(), print(), launches, allocations."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_guard(node.test):
            found.append((node.lineno, "`if __name__ == ...` block"))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "main":
            found.append((node.lineno, "defines main()"))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "print":
                found.append((node.lineno, "print() call"))
            elif isinstance(func, ast.Subscript):
                found.append((node.lineno, f"kernel launch `{dotted(func.value) or '...'}[...](...)`"))
            elif isinstance(func, ast.Attribute) and func.attr in ("run", "warmup"):
                found.append((node.lineno, f"`.{func.attr}(...)` call"))
    torch_names = {k for k, v in import_aliases(tree).items() if v == "torch"}
    for node in _module_level_nodes(tree):
        if isinstance(node, ast.Call):
            spelled = dotted(node.func) or ""
            head, _, attr = spelled.partition(".")
            if head in torch_names and attr in _ALLOC:
                found.append((node.lineno, f"module-level tensor allocation `{spelled}(...)`"))
    return [f"line {line}: {what}" for line, what in sorted(set(found))]


def import_findings(tree: ast.Module) -> list[str]:
    """Imports outside triton (+ torch when used, + a few stdlib modules)."""
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                root = a.name.split(".")[0]
                bound = a.asname or root
                if root == "triton" or root in STDLIB_OK:
                    continue
                if root == "torch":
                    if bound not in loaded:
                        found.append((node.lineno, f"`import {a.name}` but torch is never used"))
                    continue
                found.append((node.lineno, f"`import {a.name}`"))
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            root = mod.split(".")[0]
            if node.level:
                found.append((node.lineno, f"relative import `from {'.' * node.level}{mod} import ...`"))
            elif root == "triton" or root in STDLIB_OK:
                continue
            elif root == "torch":
                unused = [a.asname or a.name for a in node.names if (a.asname or a.name) not in loaded]
                if unused:
                    found.append((node.lineno, f"`from {mod} import {', '.join(unused)}` never used"))
            else:
                found.append((node.lineno, f"`from {mod} import ...`"))
    return [f"line {line}: {what}" for line, what in sorted(set(found))]


def launches(tree: ast.AST) -> bool:
    """True when the code launches a kernel: ``K[grid](...)`` or ``K.run(...)``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Subscript):
                return True
            if isinstance(node.func, ast.Attribute) and node.func.attr == "run":
                return True
    return False


def referenced(tree: ast.AST) -> set[str]:
    """Every name the code refers to: Name ids, attribute names, imported names, and string
    constants that spell a (dotted) identifier, as in ``getattr(module, "kernel")``."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts = node.value.split(".")
            if all(p.isidentifier() for p in parts):
                out.update(parts)
        elif isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.alias):
            out.add(node.name.split(".")[-1])
            if node.asname:
                out.add(node.asname)
    return out
