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
from pathlib import Path
from typing import Any

from vkc.errors import InvocationError
from vkc.invoke.core.recipe import Recipe
from vkc.invoke.core.registry import registry
from vkc.invoke.cuda.context import Ctx
from vkc.invoke.cuda.moved import MovedFile, find_moved_file
from vkc.invoke.cuda.plan import Plan

__all__ = ["RECIPE_PACKAGE", "build_recipe_plan", "check_template", "kernel_label", "recipe_for", "recipe_in_tree",
           "recipe_template_context"]

RECIPE_PACKAGE = "vkc.invoke.cuda.recipes"


def recipe_for(qualified: str) -> Recipe | None:
    """The recipe registered for ``csrc/file.cu:name`` (an ``@LINE`` suffix is ignored)."""
    return registry("cuda").find(qualified)


def recipe_in_tree(root: Path, qualified: str) -> tuple[Recipe | None, MovedFile | None]:
    """The recipe for ``qualified`` in the tree at ``root``: its own, else one that follows a moved file."""
    recipe = recipe_for(qualified)
    if recipe is not None:
        return recipe, None
    moved = find_moved_file(Path(root), qualified)
    return (moved.recipe, moved) if moved is not None else (None, None)


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
    declared = ctx.extraction.facts.get("template_params")
    if declared is not None:           # what the extractor read of the tree's kernel (hand-made extractions: none)
        check_template(recipe, plan, tuple(str(p) for p in declared), ctx.kernel)
    params = ctx.extraction.facts.get("params")
    # more arguments than the kernel has parameters is always a changed signature (fewer may be defaulted ones)
    if params is not None and plan.args and len(plan.args) > len(params):
        listed = ", ".join(f"{p.get('type', '')} {p.get('name', '')}".strip() for p in params)
        raise InvocationError(
            f"CUDA recipe {recipe.module or '?'} launches {plan.kernel_symbol} with {len(plan.args)} argument(s), but "
            f"{ctx.kernel} takes {len(params)} ({listed})",
            hint="the kernel's parameters changed in this vLLM tree; the recipe was written for vLLM 0.33.0's")
    qualname = ctx.extraction.kernel.qualname
    if qualname and qualname != plan.kernel_symbol:
        # the extractor knows the namespace the unit declares the kernel in
        plan = dataclasses.replace(plan, kernel_symbol=qualname)
    return plan


def check_template(recipe: Recipe, plan: Plan, params: tuple[str, ...], kernel: str) -> None:
    """The recipe's template arguments against the template the tree's kernel declares (issue 14): as many as
    it has parameters, less the defaulted ones at most; else the template changed and the recipe refuses
    (exit 9) rather than emit an instantiation it did not check."""
    n = len(plan.template_args)
    variadic = any("..." in p for p in params)
    required = sum(1 for p in params if "=" not in p and "..." not in p)
    if required <= n and (variadic or n <= len(params)):
        return
    declared = ", ".join(" ".join(p.split()) for p in params) or "none"
    raise InvocationError(
        f"CUDA recipe {recipe.module or '?'} instantiates {plan.kernel_symbol} with {n} template argument(s) "
        f"({', '.join(plan.template_args)}), but {kernel} declares template <{declared}>",
        hint="the kernel's template changed in this vLLM tree; the recipe was written for vLLM 0.33.0's")


def recipe_template_context(recipe: Recipe, plan: Plan) -> dict[str, Any]:
    """A recipe with its own ``template`` provides ``template_context(plan) -> dict`` in its module."""
    mod = importlib.import_module(f"{RECIPE_PACKAGE}.{recipe.module}")
    hook = getattr(mod, "template_context", None)
    if hook is None:
        raise InvocationError(f"CUDA recipe {recipe.module} names template {recipe.template} but its module has "
                              "no template_context(plan)", hint="this is a bug in the recipe")
    context: dict[str, Any] = hook(plan)
    return context
