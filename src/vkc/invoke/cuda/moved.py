"""A CUDA recipe follows its kernel to the file another release keeps it in (issue 14).

CUDA recipes are keyed by vLLM 0.33.0's file paths (``csrc/activation_kernels.cu:act_and_mul_kernel``);
0.25.0 - 0.30.0 keep the same sources under ``csrc/libtorch_stable/``.  A kernel with no recipe under its
own name gets the recipe of the same kernel name in a file of the same trailing path (at least the file
name), when that recipe's file does not exist in the tree at hand (the file moved; it was not copied).
The move is a path rule: the recipe's folder prefix -> the tree's (``csrc/`` -> ``csrc/libtorch_stable/``),
and the recipe's :class:`~vkc.invoke.cuda.context.Ctx` looks every file it cites first where the rule
puts it, then where the recipe has it.  Nothing else is assumed: each wrapper line a recipe copies is
still found verbatim (:mod:`vkc.invoke.cuda.srcref`), so a wrapper, a launch or a template that changed
makes the recipe fail with an InvocationError naming the file (exit 9), never a quiet weaker example.
Two candidates (two recipes' files of that trailing path) follow nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vkc.invoke.core.recipe import Recipe
from vkc.invoke.core.registry import registry

__all__ = ["MovedFile", "find_moved_file"]


@dataclass(frozen=True)
class MovedFile:
    recipe: Recipe
    recipe_kernel: str          # the qualified name the recipe was written for
    old_prefix: str             # the recipe's folder prefix ("csrc/")
    new_prefix: str             # this tree's ("csrc/libtorch_stable/")

    def note(self) -> str:
        file = self.recipe_kernel.partition(":")[0]
        return (f"recipe {self.recipe.module} followed a moved file ({file} -> "
                f"{self.new_prefix}{file[len(self.old_prefix):]}; files it cites under {self.old_prefix} are "
                f"looked up under {self.new_prefix} first): written for {self.recipe_kernel}")

    def candidates(self, file: str) -> tuple[str, ...]:
        """Where a file the recipe cites is looked for: moved by the rule first, then as written."""
        if file.startswith(self.old_prefix):
            return (self.new_prefix + file[len(self.old_prefix):], file)
        return (file,)


def _split(qualified: str) -> tuple[str, str]:
    file, _, name = qualified.partition(":")
    return file, name.split("@", 1)[0]


def _prefixes(old: str, new: str) -> tuple[str, str] | None:
    """The folder prefixes of two paths with a common trailing part of at least the file name."""
    a, b = old.split("/"), new.split("/")
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    if n == 0 or n == len(a) and n == len(b):
        return None
    pa, pb = "/".join(a[:len(a) - n]), "/".join(b[:len(b) - n])
    return (pa + "/" if pa else ""), (pb + "/" if pb else "")


def find_moved_file(root: Path, qualified: str, kernels: tuple[str, ...] | None = None) -> MovedFile | None:
    """The recipe of ``qualified``'s kernel in a moved file, or None (see the module docstring)."""
    file, name = _split(qualified)
    if not name or not file:
        return None
    reg = registry("cuda")
    found: list[tuple[str, tuple[str, str]]] = []
    for k in kernels if kernels is not None else reg.kernels():
        kfile, kname = _split(k)
        if kname != name or kfile == file or (root / kfile).is_file():
            continue
        pre = _prefixes(kfile, file)
        if pre is not None:
            found.append((k, pre))
    if len(found) != 1:
        return None
    k, (old, new) = found[0]
    recipe = reg.find(k)
    if recipe is None:
        return None
    return MovedFile(recipe=recipe, recipe_kernel=k, old_prefix=old, new_prefix=new)
