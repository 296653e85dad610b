"""Print vkc's modules over 400 lines and functions over 80 lines (DEVELOPERS.md's size rule).

    python bench/code_size.py [--modules N] [--functions N] [--exclude PREFIX]... [ROOT]

ROOT defaults to src/vkc beside this script's repository. A function's length is
``end_lineno - lineno + 1`` of its ``def`` node (decorators not counted; nested functions are
reported on their own and also count towards their parent). Exit status 1 when anything is
over a limit, so CI could use it; the output is sorted, path-relative and byte-stable.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

__all__ = ["Finding", "main", "scan"]

REPO = Path(__file__).resolve().parent.parent

Finding = tuple[str, str, int]  # (relative path, "module" or qualified function name, lines)


def _functions(tree: ast.AST) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                out.append((name, (child.end_lineno or child.lineno) - child.lineno + 1))
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def scan(root: Path, max_module: int = 400, max_function: int = 80,
         exclude: tuple[str, ...] = ()) -> list[Finding]:
    """Every module over ``max_module`` lines and function over ``max_function`` lines."""
    found: list[Finding] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        if any(rel.startswith(p) for p in exclude):
            continue
        text = path.read_text(encoding="utf-8")
        n = len(text.splitlines())
        if n > max_module:
            found.append((rel, "module", n))
        for name, length in _functions(ast.parse(text, filename=str(path))):
            if length > max_function:
                found.append((rel, name, length))
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", default=str(REPO / "src" / "vkc"))
    ap.add_argument("--modules", type=int, default=400, help="module line limit (default 400)")
    ap.add_argument("--functions", type=int, default=80, help="function line limit (default 80)")
    ap.add_argument("--exclude", action="append", default=[], metavar="PREFIX",
                    help="skip paths starting with PREFIX, relative to ROOT's parent (e.g. vkc/invoke/)")
    a = ap.parse_args(argv)
    found = scan(Path(a.root), a.modules, a.functions, tuple(a.exclude))
    for rel, what, n in found:
        print(f"{n:5d}  {rel}" + ("" if what == "module" else f"  {what}()"))
    mods = sum(1 for f in found if f[1] == "module")
    print(f"{mods} modules > {a.modules} lines, {len(found) - mods} functions > {a.functions} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
