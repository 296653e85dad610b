"""A Triton recipe follows its kernel to the module another release keeps it in (issue 14).

Recipes are written against vLLM 0.33.0's module paths (``vllm.v1.attention.ops.X:kernel``); 0.11.0
keeps the same files under ``vllm.attention.ops``.  A kernel with no recipe under its own name gets
the recipe of the same function in a module of the same file name, when that recipe's module does
not exist in the tree at hand (so the kernel moved; it was not copied).  The trace worker then imports
the tree's module wherever the recipe asks for its own (:attr:`Moved.aliases`), and the header says
the recipe followed a moved module.  Nothing else is assumed: a wrapper whose signature or launch
changed fails in the trace worker, which is an error naming the recipe (exit 9), never a quiet
weaker example.  Ambiguous candidates (two recipes' modules of that file name) follow nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vkc.invoke.core.recipe import Recipe
from vkc.invoke.core.registry import registry

__all__ = ["Moved", "find_moved", "module_in_tree"]


@dataclass(frozen=True)
class Moved:
    recipe: Recipe
    recipe_kernel: str                      # the qualified name the recipe was written for
    aliases: tuple[tuple[str, str], ...]    # (recipe's module, this tree's module)

    def note(self) -> str:
        pairs = ", ".join(f"{a} -> {b}" for a, b in self.aliases)
        return f"recipe {self.recipe.module} followed a moved module ({pairs}): written for {self.recipe_kernel}"


def module_in_tree(root: Path, module: str) -> bool:
    base = root / Path(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def find_moved(root: Path, qualified: str, kernels: tuple[str, ...] | None = None) -> Moved | None:
    """The recipe of ``qualified``'s function in a moved module, or None (see the module docstring)."""
    module, _, qual = qualified.partition(":")
    qual = qual.split("@", 1)[0]
    if not qual:
        return None
    leaf = module.rsplit(".", 1)[-1]
    reg = registry("triton")
    found = []
    for k in kernels if kernels is not None else reg.kernels():
        kmod, _, kqual = k.partition(":")
        if kqual == qual and kmod != module and kmod.rsplit(".", 1)[-1] == leaf and not module_in_tree(root, kmod):
            found.append(k)
    if len(found) != 1:
        return None
    recipe = reg.find(found[0])
    if recipe is None:
        return None
    return Moved(recipe=recipe, recipe_kernel=found[0], aliases=((found[0].partition(":")[0], module),))
