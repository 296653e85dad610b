"""invoke_triton: the one entry of the Triton half; it picks the path that makes the launch plan.

* a kernel with a workload recipe: the **traced** path (:mod:`.traced`), vLLM's own wrapper run
  on meta tensors; a recipe that fails is a reported error, never a switch to a synthesised example;
* a kernel without one: the **untraced** path (:mod:`.untraced`), a launch synthesised from the
  kernel's signature and launch site (the header says UNTRACED / generic).

Policy (shared with CUDA, :mod:`vkc.invoke.core.policy`): the workload is the requested one,
else the recipe's default, else decode; one the recipe does not support, or a model lacking what
it needs, is exit 12.  The example is rendered by :mod:`.render`.
"""
from __future__ import annotations

from vkc.invoke.core.dims import ModelDims
from vkc.invoke.core.policy import choose_workload
from vkc.invoke.triton.plan import TritonPlan
from vkc.invoke.triton.recipes import get_recipe
from vkc.invoke.triton.render import Context, render_invocation
from vkc.invoke.triton.traced import traced_plan
from vkc.invoke.triton.untraced import untraced_plan
from vkc.records import Extraction, Invocation, KernelEntry, ModelConfig, SourceTree


def qualified_name(kernel: KernelEntry) -> str:
    return kernel.qualified if kernel.lang == "triton" and kernel.qualified else f"{kernel.module}:{kernel.qualname}"


def invoke_triton(tree: SourceTree, extraction: Extraction, model: ModelConfig, workload: str | None,
                  *, command: str) -> Invocation:
    """Build the invocation example for a Triton kernel (spec 3.2, Agent B)."""
    kernel = extraction.kernel
    name = str(extraction.facts.get("name") or kernel.name)
    entry = str(extraction.facts.get("entry_symbol") or kernel.qualname)
    qualified = qualified_name(kernel)
    recipe = get_recipe(qualified)
    wl, why = choose_workload(workload, recipe, name)
    notes: list[str] = []
    plan: TritonPlan
    if recipe is not None:
        dims = ModelDims.from_config(model)
        recipe.check_needs(dims, name)
        plan = traced_plan(tree, kernel, qualified, recipe, dims.recipe_dict(), wl)
    else:
        notes.append(f"no workload recipe for {qualified}; launch not traced")
        plan = untraced_plan(extraction, model, entry, notes, tree=tree)
    ctx = Context(tree=tree, extraction=extraction, model=model, workload=wl, inferred=workload is None,
                  why=why, command=command, name=name, entry=entry)
    return render_invocation(ctx, plan, notes)


__all__ = ["invoke_triton", "qualified_name"]
