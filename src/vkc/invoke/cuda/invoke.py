"""Entry: :func:`invoke_cuda` -- a complete C++ host program for one extracted CUDA kernel.

Which path made the plan is visible here and in the artifact: a registered recipe
(:mod:`.recipe_path`, vLLM's wrapper code copied with its origin) or the untraced path
(:mod:`.untraced`, ``[untraced/generic ...]`` in the header, ``facts["untraced"]``).

File conventions (the writer/verifier rely on them):

* kernel unit:          ``<stem>.cu``       (stem = ``vkc.naming.safe_stem(name)``)
* invocation example:   ``<stem>_main.cu``  (``#include "<stem>.cu"`` is its first include)
* binary:               ``<stem>``
* marker line:          ``// VKC_INSTANTIATE: <qualified kernel><<args>>``
"""
from __future__ import annotations

import dataclasses
import sys
from typing import Any

from vkc.errors import InvocationError
from vkc.invoke.core.dims import ModelDims
from vkc.invoke.core.header import header_lines
from vkc.invoke.core.policy import choose_workload
from vkc.invoke.core.provenance import InvocationMode, Provenance
from vkc.invoke.core.recipe import Recipe
from vkc.invoke.cuda.build import build_command, main_file_name
from vkc.invoke.cuda.context import Ctx
from vkc.invoke.cuda.header import header_fields
from vkc.invoke.cuda.modeltraced.attempt import attempt, attempt_wrapped
from vkc.invoke.cuda.plan import Plan
from vkc.invoke.cuda.recipe_path import build_recipe_plan, recipe_in_tree
from vkc.invoke.cuda.refcheck import host_check, with_reference
from vkc.invoke.cuda.render import (
    MARKER,
    instantiation_marker,
    render_program,
    type_includes,
)
from vkc.invoke.cuda.untraced import build_untraced, evident_phase
from vkc.naming import safe_stem
from vkc.records import Extraction, Invocation, ModelConfig, SourceTree
from vkc.reference import ReferenceLookup

__all__ = ["MARKER", "build_command", "instantiation_marker", "invoke_cuda", "main_file_name", "qualified_name"]

def qualified_name(extraction: Extraction) -> str:
    k = extraction.kernel
    return k.qualified or f"{k.file}:{k.name}"


def invoke_cuda(tree: SourceTree, extraction: Extraction, model: ModelConfig, workload: str | None, *,
                command: str, name: str) -> Invocation:
    """Build the invocation example (host program) for ``extraction`` at ``model``'s shapes."""
    if extraction.kernel_type != "cuda":
        raise InvocationError(f"{name} is a {extraction.kernel_type} kernel, not CUDA")
    qual = qualified_name(extraction)
    recipe, moved = recipe_in_tree(tree.root, qual)     # a recipe follows a moved file (issue 14)
    phase = None if recipe is not None else evident_phase(extraction)
    wl, why = choose_workload(workload, recipe, qual, phase)
    ctx = Ctx(tree, extraction, ModelDims.from_config(model), wl, qual,
              moved_prefixes=(moved.old_prefix, moved.new_prefix) if moved is not None else None)
    # no recipe: vLLM's own host function compiled against vkc's Tensor stand-in, from the model's traced call
    wrapped = attempt_wrapped(tree, model, ctx, name=name, command=command, why=why) if recipe is None else None
    if recipe is None and (wrapped is None or wrapped.invocation is None):
        # then the op calls vLLM's own tests make, at the model's sizes where the test has them
        wrapped = _tested(tree, model, ctx, name=name, command=command, why=why,
                          fallback_from=wrapped.fallback if wrapped is not None else None)
    if wrapped is not None and wrapped.invocation is not None:
        inv = wrapped.invocation
        return dataclasses.replace(inv, facts={**inv.facts, "workload_inferred": workload is None})
    plan, prov, traced = _plan(tree, model, recipe, ctx, name)
    if moved is not None:
        plan = dataclasses.replace(plan, notes=(*plan.notes, moved.note()))
    if wrapped is not None and wrapped.fallback:
        prov = dataclasses.replace(prov, fallback_from=wrapped.fallback)
        plan = dataclasses.replace(plan, notes=(*plan.notes, f"fell back from {wrapped.fallback}"))
    stem = safe_stem(name)
    include_flags = tuple(str(f) for f in extraction.facts.get("include_flags", ()) or ()
                          if "TORCH_INCLUDE" not in str(f))  # the torch include is always given
    build = build_command(stem, include_flags)
    fields = header_fields(tree, extraction, model, ctx.dims, wl, why, plan, command, build, stem, prov, traced)
    found, check, ref_fields = host_check(tree, qual, plan, prov.mode.value, name)
    if recipe is not None and recipe.template:     # a recipe's own template (multi-GPU) has no check
        found, check, ref_fields = ReferenceLookup(None, "the recipe's own template has no reference check"), {}, []
    header = header_lines(with_reference(fields, ref_fields), "//")
    code = render_program(plan, header, recipe=recipe, stem=stem, name=name, model_id=model.model_id, workload=wl,
                          check=check)
    return Invocation(code=code, handoff=_handoff(extraction, plan), workload=wl, model_id=model.model_id,
                      header="\n".join(header),
                      facts={**_facts(plan, stem, qual, build, workload is None), "provenance": prov,
                             "reference": found.to_json()})


def _tested(tree: SourceTree, model: ModelConfig, ctx: Ctx, *, name: str, command: str, why: str,
            fallback_from: str | None) -> Any:
    """The wrapper-compiled example from a vLLM test's op call (:mod:`vkc.invoke.cuda.wrapped.tested`); keeps a
    model-traced attempt's fallback when no test helps, and says in one warning line why no test did."""
    from vkc.invoke.cuda.wrapped.tested import wrapped_from_tests
    from vkc.invoke.cuda.wrapped.traced import WrappedAttempt

    got = wrapped_from_tests(tree, ctx.extraction, model, workload=ctx.workload, why=why, command=command,
                             name=name, fallback_from=fallback_from)
    if got.invocation is not None:
        return got
    if got.fallback:
        text = " ".join(got.fallback.removeprefix("test-traced: ").split())[:300]
        print(f"vkc: warning: {name}: no vLLM test gave a reproducible op call ({text}); using the synthesized "
              "example", file=sys.stderr)
    return WrappedAttempt(fallback=fallback_from or got.fallback)


def _plan(tree: SourceTree, model: ModelConfig, recipe: Recipe | None, ctx: Ctx,
          name: str) -> tuple[Plan, Provenance, tuple[str, ...]]:
    """Model-traced (a recipe sized from the model's traced op call), else the recipe, else untraced."""
    if recipe is None:
        plan = build_untraced(ctx)
        return plan, _provenance(None, plan), ()
    plan = build_recipe_plan(recipe, ctx)          # raises for a model the kernel does not apply to
    got = attempt(tree, model, ctx, lambda c: build_recipe_plan(recipe, c), name=name)
    if got is not None and got.plan is not None:
        return got.plan, Provenance(InvocationMode.MODEL_TRACED, got.source), got.traced_lines
    prov = _provenance(recipe, plan)
    if got is not None and got.note:
        plan = dataclasses.replace(plan, notes=(*plan.notes, got.note))
    if got is not None and got.fallback:
        prov = dataclasses.replace(prov, fallback_from=got.fallback)
        plan = dataclasses.replace(plan, notes=(*plan.notes, f"fell back from {got.fallback}"))
    return plan, prov, ()


def _provenance(recipe: Recipe | None, plan: Plan) -> Provenance:
    """Recipe: the wrapper's own launch expressions bound at the model's sizes; else synthesised."""
    if recipe is not None and not plan.untraced:
        return Provenance(InvocationMode.RECIPE, f"recipe {recipe.module}: {plan.wrapper or 'wrapper'}")
    return Provenance(InvocationMode.SYNTHESIZED,
                      "kernel signature + launch site (vkc's generic host program; index buffers ranged by "
                      "name, not the model's launch)")


def _handoff(extraction: Extraction, plan: Plan) -> Any:
    h = extraction.handoff
    return dataclasses.replace(
        h, grid_expr=plan.grid_expr or h.grid_expr,
        meta_params={**dict(h.meta_params), "template_args": list(plan.template_args),
                     "instantiation": plan.instantiation, "block": plan.block_expr},
        smem_formula=plan.smem_expr if plan.smem_expr not in ("", "0") else h.smem_formula,
    )


def _facts(plan: Plan, stem: str, qual: str, build: str, inferred: bool) -> dict[str, Any]:
    return {
        "unit_file": f"{stem}.cu", "main_file": main_file_name(stem), "binary": stem,
        "build_command": build, "instantiation": plan.instantiation,
        "marker": instantiation_marker(plan.instantiation), "type_includes": type_includes(plan),
        "recipe": "generic" if plan.untraced else qual,
        "untraced": plan.untraced, "workload_inferred": inferred, "min_gpus": plan.min_gpus,
        "grid": plan.grid_expr, "block": plan.block_expr, "smem": plan.smem_expr,
    }
