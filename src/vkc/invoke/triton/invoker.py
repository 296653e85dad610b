"""invoke_triton: the one entry of the Triton half; it picks the path that makes the launch plan.

In order of strength (:class:`vkc.invoke.core.provenance.InvocationMode`):

* **model-traced** (:mod:`.modeltraced`): the model's own decode/prefill step traced through vLLM
  (one cached worker run per model serves every kernel and both workloads); when the step launches
  the kernel, the example reproduces exactly those launches.  A trace that fails prints one warning
  line and falls back; a launch whose contents cannot be made valid falls back; both are recorded
  in the provenance (``fallback_from``).  ``VKC_MODEL_TRACE=0`` disables it.
* **recipe** (:mod:`.traced`): vLLM's own wrapper run on meta tensors, driven by a workload recipe;
  a recipe that fails is a reported error, never a switch to a synthesised example;
* **test-traced** / **vllm-sized** (:mod:`.testtraced`, kernels without a recipe): a vLLM test under
  ``tests/kernels`` that calls the kernel's wrapper, run on CPU tensors until the kernel's first
  launch (recorded, not run); test-traced when a size parameter was mapped from the model, else
  vllm-sized.  A test that gives no usable launch prints one warning line and falls back
  (``fallback_from``).  ``VKC_TEST_TRACE=0`` disables it;
* **synthesized** (:mod:`.untraced`): a launch from the kernel's signature and launch site.

Policy (shared with CUDA, :mod:`vkc.invoke.core.policy`): the workload is the requested one,
else the recipe's default, else decode; one the recipe does not support, or a model lacking what
it needs, is exit 12.  The example is rendered by :mod:`.render`; ``Invocation.facts["provenance"]``
is the :class:`~vkc.invoke.core.provenance.Provenance`.
"""
from __future__ import annotations

from vkc.invoke.core.dims import ModelDims
from vkc.invoke.core.policy import choose_workload
from vkc.invoke.core.provenance import InvocationMode, Provenance
from vkc.invoke.triton.modeltraced.attempt import Attempt, attempt, source_text
from vkc.invoke.triton.plan import TritonPlan
from vkc.invoke.triton.recipes import get_recipe
from vkc.invoke.triton.render import Context, render_invocation
from vkc.invoke.triton.testtraced.attempt import attempt as _test_attempt
from vkc.invoke.triton.traced import traced_plan
from vkc.invoke.triton.traced.moved import find_moved
from vkc.invoke.triton.untraced import untraced_plan
from vkc.records import Extraction, Invocation, KernelEntry, ModelConfig, SourceTree

SYNTHESIZED_SOURCE = "kernel signature + launch site"


def _kernels(tree: SourceTree) -> tuple[KernelEntry, ...]:
    """Every kernel of the tree (the test-traced source matches tests to their wrappers; index cached)."""
    from vkc.index import build_index

    return build_index(tree).kernels


def qualified_name(kernel: KernelEntry) -> str:
    return kernel.qualified if kernel.lang == "triton" and kernel.qualified else f"{kernel.module}:{kernel.qualname}"


def _params(extraction: Extraction, entry: str) -> list[str] | None:
    """The entry's parameters in signature order (the model trace keeps only the runtime ones in order)."""
    import ast

    leaf = entry.split(".")[-1]
    try:
        tree = ast.parse(extraction.source_code)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == leaf:
            return [a.arg for a in node.args.posonlyargs + node.args.args] or None
    return None


def _wrapper_site(plan: TritonPlan, extraction: Extraction) -> str:
    site = plan.launch.site if plan.launch else None
    if site:
        return f"{site.file}:{site.line} ({site.function})"
    sites = extraction.kernel.launch_sites[:1]
    return ", ".join(f"{s.file}:{s.line} ({s.wrapper})" for s in sites) or "unknown site"


def invoke_triton(tree: SourceTree, extraction: Extraction, model: ModelConfig, workload: str | None,
                  *, command: str) -> Invocation:
    """Build the invocation example for a Triton kernel (spec 3.2, Agent B)."""
    kernel = extraction.kernel
    name = str(extraction.facts.get("name") or kernel.name)
    entry = str(extraction.facts.get("entry_symbol") or kernel.qualname)
    qualified = qualified_name(kernel)
    recipe = get_recipe(qualified)
    notes: list[str] = []
    moved = find_moved(tree.root, qualified) if recipe is None else None
    if moved is not None:           # the kernel lives elsewhere in this release (issue 14)
        recipe = moved.recipe
        notes.append(moved.note())
    wl, why = choose_workload(workload, recipe, name)
    weaker = "the recipe" if recipe is not None else "a synthesized example"
    mt: Attempt = attempt(tree, model, qualified, wl, name=name, weaker=weaker, params=_params(extraction, entry))
    plan: TritonPlan
    if mt.plan is not None:
        plan = mt.plan
        prov = Provenance(InvocationMode.MODEL_TRACED, source_text(mt.plan, wl))
    else:
        if mt.note:
            notes.append(mt.note)
        if recipe is not None:
            dims = ModelDims.from_config(model)
            recipe.check_needs(dims, name)
            plan = traced_plan(tree, kernel, qualified, recipe, dims.recipe_dict(), wl,
                               **({"moved": moved} if moved is not None else {}))
            prov = Provenance(InvocationMode.RECIPE, f"{recipe.module} via {_wrapper_site(plan, extraction)}",
                              fallback_from=mt.fallback)
        else:
            tt = _test_attempt(tree, kernel, qualified, model, name=name, kernels=lambda: _kernels(tree),
                               params=_params(extraction, entry), fallback_from=mt.fallback, workload=wl)
            if tt.plan is not None and tt.provenance is not None:
                plan, prov = tt.plan, tt.provenance
                notes.extend(tt.notes)
            else:
                notes.extend(n for n in (tt.note,) if n)
                notes.append(f"no workload recipe for {qualified}; launch not traced")
                plan = untraced_plan(extraction, model, entry, notes, tree=tree)
                fell = "; ".join(f for f in (mt.fallback, tt.fallback) if f) or None
                prov = Provenance(InvocationMode.SYNTHESIZED, SYNTHESIZED_SOURCE, fallback_from=fell)
    ctx = Context(tree=tree, extraction=extraction, model=model, workload=wl, inferred=workload is None,
                  why=why, command=command, name=name, entry=entry, provenance=prov, trace=mt.trace)
    return render_invocation(ctx, plan, notes)


__all__ = ["SYNTHESIZED_SOURCE", "invoke_triton", "qualified_name"]
