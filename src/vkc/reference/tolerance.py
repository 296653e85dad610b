"""Tolerances, read statically from the tree: vLLM's per-dtype defaults and a test's own numbers.

* ``vllm/ir/tolerances.py``'s ``DEFAULT_TOLERANCES`` (``{torch.float16: {"atol": ..., "rtol": ...}}``),
  with an IR op's own ``<op>.override_tolerance(torch.float16, atol=..., rtol=...)`` calls from
  its ``vllm/ir/ops/*.py`` file applied on top;
* a test's stated ``atol``/``rtol``: the mapping row names the line (``file:line``); the numbers
  must appear as literals on that line, else the row is refused (the tree moved under it).
"""
from __future__ import annotations

import ast
from pathlib import Path

from vkc.reference.records import Tolerance

DEFAULTS_FILE = "vllm/ir/tolerances.py"
IR_OPS_DIR = "vllm/ir/ops"


def _dtype_key(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch":
        return node.attr
    return None


def _pair(node: ast.expr) -> tuple[float, float] | None:
    if not isinstance(node, ast.Dict):
        return None
    vals: dict[str, float] = {}
    for k, v in zip(node.keys, node.values):
        if isinstance(k, ast.Constant) and isinstance(v, ast.Constant) and isinstance(v.value, (int, float)):
            vals[str(k.value)] = float(v.value)
    return (vals["atol"], vals["rtol"]) if "atol" in vals and "rtol" in vals else None


def default_tolerances(root: Path) -> dict[str, tuple[float, float]]:
    """``DEFAULT_TOLERANCES`` by torch dtype name ({} when the tree has none)."""
    path = root / DEFAULTS_FILE
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    out: dict[str, tuple[float, float]] = {}
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(target, ast.Name) and target.id == "DEFAULT_TOLERANCES" and isinstance(value, ast.Dict):
            for k, v in zip(value.keys, value.values):
                key, pair = (_dtype_key(k) if k is not None else None), _pair(v)
                if key and pair:
                    out[key] = pair
    return out


def ir_overrides(root: Path, op: str) -> dict[str, tuple[float, float]]:
    """``op.override_tolerance(torch.<dtype>, atol=..., rtol=...)`` calls in ``vllm/ir/ops/*.py``."""
    out: dict[str, tuple[float, float]] = {}
    for path in sorted((root / IR_OPS_DIR).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError):
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "override_tolerance" and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == op and node.args):
                continue
            key = _dtype_key(node.args[0])
            kw = {k.arg: k.value.value for k in node.keywords
                  if isinstance(k.value, ast.Constant) and isinstance(k.value.value, (int, float))}
            if key and "atol" in kw and "rtol" in kw:
                out[key] = (float(kw["atol"]), float(kw["rtol"]))
    return out


def vllm_defaults(root: Path, ir_op: str | None) -> Tolerance | None:
    """vLLM's per-dtype defaults (with the IR op's overrides), or None when the tree has none."""
    table = default_tolerances(root)
    if not table:
        return None
    origin = DEFAULTS_FILE
    if ir_op:
        over = ir_overrides(root, ir_op)
        if over:
            table.update(over)
            origin += f" with {ir_op}.override_tolerance ({', '.join(sorted(over))})"
    return Tolerance(tuple((k, *table[k]) for k in sorted(table)), origin)


def line_numbers(root: Path, at: str) -> list[float]:
    """The numeric literals on line ``file:line`` of the tree ([] when unreadable)."""
    rel, _, line = at.rpartition(":")
    try:
        text = (root / rel).read_text(encoding="utf-8").splitlines()[int(line) - 1]
    except (OSError, ValueError, IndexError):
        return []
    nums: list[float] = []
    try:
        tree = ast.parse(text.strip().rstrip(",").rstrip("(") or "0")
    except SyntaxError:
        import re
        return [float(m) for m in re.findall(r"(?<![\w.])\d+(?:\.\d*)?(?:e-?\d+)?", text)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            nums.append(float(node.value))
    return nums


ALLCLOSE_DEFAULTS = (1e-8, 1e-5)


def stated(root: Path, at: str, atol: float, rtol: float) -> bool:
    """True when ``atol`` and ``rtol`` are literals on line ``at``; an ``allclose(...)`` line that
    names neither states torch.allclose's defaults (atol 1e-8, rtol 1e-5), one that names only rtol
    states the default atol."""
    rel, _, line = at.rpartition(":")
    try:
        text = (root / rel).read_text(encoding="utf-8").splitlines()[int(line) - 1]
    except (OSError, ValueError, IndexError):
        return False
    if "allclose(" in text and "atol" not in text and "rtol" not in text:
        return (atol, rtol) == ALLCLOSE_DEFAULTS
    nums = line_numbers(root, at)
    default_atol = "atol" not in text and atol == ALLCLOSE_DEFAULTS[0]
    return rtol in nums and (atol in nums or default_atol)


__all__ = ["ALLCLOSE_DEFAULTS", "DEFAULTS_FILE", "default_tolerances", "ir_overrides", "line_numbers", "stated", "vllm_defaults"]
