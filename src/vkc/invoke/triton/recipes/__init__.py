"""Triton workload recipes: every module here (but ``base`` and ``_*`` helpers) defines ``RECIPES``.

Discovered by the core registry (:func:`vkc.invoke.core.registry.registry` ``("triton")``), which
fails loudly on a module without ``RECIPES``, one that does not import, or two recipes claiming
one kernel.  :func:`get_recipe` finds the recipe of a qualified kernel name; the trace worker
finds a recipe's plan by module name with :func:`plan_in_module`.
"""
from __future__ import annotations

import importlib

from vkc.invoke.core.recipe import Recipe
from vkc.invoke.core.registry import registry
from vkc.invoke.triton.recipes.base import TritonRecipe


def get_recipe(qualified: str) -> Recipe | None:
    """The recipe serving ``module:qualname``, or None."""
    return registry("triton").find(qualified)


def plan_in_module(module_name: str, kernel: str) -> TritonRecipe:
    """The plan of the recipe in ``recipes.<module_name>`` serving ``kernel`` (used by the trace worker,
    which imports only that module, not the whole registry)."""
    mod = importlib.import_module(f"{__name__}.{module_name}")
    for r in mod.RECIPES:
        if kernel in r.kernels:
            plan: TritonRecipe = r.plan
            return plan
    raise LookupError(f"recipe module {module_name} has no recipe for {kernel}")


__all__ = ["get_recipe", "plan_in_module"]
