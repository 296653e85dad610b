"""The recipe path: a registered CUDA recipe builds the plan from vLLM's own wrapper code.

:func:`recipe_for` looks the kernel up in the core registry (``registry("cuda")``);
:func:`build_recipe_plan` checks what the recipe declares it needs of the model (exit 12 when
the model lacks it), then runs the recipe.  A recipe that fails with anything but an
:class:`~vkc.errors.InvocationError` (``NotApplicableError`` included) is a recipe bug,
reported as an InvocationError (exit 9) naming the recipe -- never a silent switch to the
untraced path.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from vkc.errors import InvocationError
from vkc.invoke.core.recipe import Recipe
from vkc.invoke.core.registry import registry
from vkc.invoke.cuda.context import Ctx
from vkc.invoke.cuda.plan import Plan

__all__ = ["RECIPE_PACKAGE", "build_recipe_plan", "kernel_label", "recipe_for", "recipe_template_context"]

RECIPE_PACKAGE = "vkc.invoke.cuda.recipes"


def recipe_for(qualified: str) -> Recipe | None:
    """The recipe registered for ``csrc/file.cu:name`` (an ``@LINE`` suffix is ignored)."""
    return registry("cuda").find(qualified)


def kernel_label(qualified: str) -> str:
    """The bare kernel name of ``csrc/file.cu:name@LINE`` (what "does not apply" messages say)."""
    return qualified.rsplit(":", 1)[-1].split("@", 1)[0]


def build_recipe_plan(recipe: Recipe, ctx: Ctx) -> Plan:
    """The recipe's plan for ``ctx`` (needs checked first), in the namespace the unit declares."""
    recipe.check_needs(ctx.dims, kernel_label(ctx.kernel))
    try:
        plan = recipe.plan(ctx)
    except InvocationError:
        raise
    except Exception as e:
        raise InvocationError(
            f"CUDA recipe {recipe.module or '?'} failed for {ctx.kernel} at {ctx.dims.model_id} ({ctx.workload}): "
            f"{type(e).__name__}: {e}",
            hint="this is a bug in the recipe; rerun with --debug for the traceback") from e
    if not isinstance(plan, Plan):
        raise InvocationError(f"CUDA recipe {recipe.module or '?'} returned {type(plan).__name__}, not a Plan",
                              hint="this is a bug in the recipe")
    qualname = ctx.extraction.kernel.qualname
    if qualname and qualname != plan.kernel_symbol:
        # the extractor knows the namespace the unit declares the kernel in
        plan = dataclasses.replace(plan, kernel_symbol=qualname)
    return plan


def recipe_template_context(recipe: Recipe, plan: Plan) -> dict[str, Any]:
    """A recipe with its own ``template`` provides ``template_context(plan) -> dict`` in its module."""
    mod = importlib.import_module(f"{RECIPE_PACKAGE}.{recipe.module}")
    hook = getattr(mod, "template_context", None)
    if hook is None:
        raise InvocationError(f"CUDA recipe {recipe.module} names template {recipe.template} but its module has "
                              "no template_context(plan)", hint="this is a bug in the recipe")
    context: dict[str, Any] = hook(plan)
    return context
