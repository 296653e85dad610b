"""One registry of recipes, discovered from the recipe packages; it fails loudly.

Every module of a recipe package (names starting with ``_`` and ``base`` excepted) must import
cleanly and define ``RECIPES``; two recipes claiming one kernel, a module that cannot be imported
or one without ``RECIPES`` raise :class:`RecipeRegistryError` -- a vkc bug, never silently skipped.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from functools import cache
from types import ModuleType

from vkc.invoke.core.recipe import Lang, Recipe

__all__ = ["PACKAGES", "RecipeRegistryError", "Registry", "registry"]

PACKAGES: dict[str, str] = {"triton": "vkc.invoke.triton.recipes", "cuda": "vkc.invoke.cuda.recipes"}
_SKIP = ("base",)


class RecipeRegistryError(RuntimeError):
    """A recipe package is inconsistent (an internal error: exit 70)."""


class Registry:
    """Recipes by qualified kernel name."""

    def __init__(self, package: str, lang: Lang):
        self.package = package
        self.lang = lang
        self._by_kernel: dict[str, Recipe] = {}
        self._recipes: list[Recipe] = []
        for mod in _modules(package):
            self._add_module(mod)

    def _add_module(self, mod: ModuleType) -> None:
        recipes = getattr(mod, "RECIPES", None)
        if not isinstance(recipes, tuple) or not recipes:
            raise RecipeRegistryError(f"recipe module {mod.__name__} defines no RECIPES tuple")
        short = mod.__name__.rsplit(".", 1)[1]
        for r in recipes:
            if not isinstance(r, Recipe):
                raise RecipeRegistryError(f"{mod.__name__}.RECIPES holds {type(r).__name__}, not a Recipe")
            if r.lang != self.lang:
                raise RecipeRegistryError(f"{mod.__name__}: a {r.lang} recipe in the {self.lang} package")
            r = dataclasses.replace(r, module=short)
            self._recipes.append(r)
            for k in r.kernels:
                if k in self._by_kernel:
                    raise RecipeRegistryError(
                        f"kernel {k} is claimed by recipes in {self._by_kernel[k].module} and {short}")
                self._by_kernel[k] = r

    def find(self, qualified: str) -> Recipe | None:
        """The recipe for a qualified kernel name (a ``@LINE`` overload suffix is ignored)."""
        return self._by_kernel.get(qualified) or self._by_kernel.get(qualified.split("@", 1)[0])

    def recipes(self) -> tuple[Recipe, ...]:
        return tuple(self._recipes)

    def kernels(self) -> tuple[str, ...]:
        return tuple(sorted(self._by_kernel))


def _modules(package: str) -> list[ModuleType]:
    try:
        pkg = importlib.import_module(package)
    except Exception as e:
        raise RecipeRegistryError(f"recipe package {package} cannot be imported: {type(e).__name__}: {e}") from e
    out = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in _SKIP:
            continue
        try:
            out.append(importlib.import_module(f"{package}.{info.name}"))
        except Exception as e:
            raise RecipeRegistryError(
                f"recipe module {package}.{info.name} cannot be imported: {type(e).__name__}: {e}") from e
    return out


@cache
def registry(lang: Lang) -> Registry:
    """The registry of one language (built once per process)."""
    return Registry(PACKAGES[lang], lang)
