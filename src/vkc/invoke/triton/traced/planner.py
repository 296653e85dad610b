"""The traced path: a recipe sizes the problem, the trace worker runs vLLM's wrapper, the launch is read back.

:func:`traced_plan` sizes FULL and SMALL with the recipe's ``shapes``, traces both in one worker
run (:func:`.tracer.run_trace`, disk-cached) and turns the first selected launch of the kernel
into a :class:`~vkc.invoke.triton.plan.TritonPlan`.  A recipe that says "not this model"
(NotApplicableError, in sizing or in the wrapper) is exit 12; any other failure -- sizing, the
worker, the wrapper -- is an InvocationError (exit 9) naming the recipe, never a silent switch
to the generic example.
"""
from __future__ import annotations

import math
from typing import Any

from vkc.errors import InvocationError, NotApplicableError
from vkc.invoke.common import budget_bytes
from vkc.invoke.core.recipe import Recipe
from vkc.invoke.triton.plan import (
    TRITON_DEFAULT_STAGES,
    TRITON_DEFAULT_WARPS,
    Arg,
    Buffer,
    InitSpec,
    LaunchConfig,
    LaunchInfo,
    Scalar,
    Site,
    TensorView,
    TritonPlan,
)
from vkc.invoke.triton.recipes.base import TritonRecipe
from vkc.invoke.triton.traced.moved import Moved
from vkc.invoke.triton.traced.tracer import run_trace
from vkc.records import KernelEntry, SourceTree

_HINT = "this recipe cannot drive vLLM's wrapper for this model; rerun with --debug, or report it with the command line"


def traced_plan(tree: SourceTree, kernel: KernelEntry, qualified: str, recipe: Recipe, dims: dict[str, Any],
                workload: str, moved: Moved | None = None) -> TritonPlan:
    """Trace vLLM's wrapper through ``recipe`` at the model ``dims`` (:meth:`ModelDims.recipe_dict`)."""
    plan: TritonRecipe = recipe.plan
    shapes: dict[str, dict[str, Any]] = {}
    jobs = []
    for cfg, small in (("FULL", False), ("SMALL", True)):
        shapes[cfg] = _size(recipe, plan, dims, workload, small, cfg)
        jobs.append({"id": cfg, "recipe": recipe.module, "kernel": qualified, "kernel_line": kernel.line,
                     "shapes": shapes[cfg], "platform": plan.platform,
                     **({"recipe_kernel": moved.recipe_kernel, "aliases": dict(moved.aliases)} if moved else {})})
    resp = run_trace(tree, jobs, helpers=recipe.helpers)
    if not resp.get("ok"):
        raise InvocationError(f"recipe {recipe.module}: the trace worker failed: {resp.get('error')}", hint=_HINT)
    configs: dict[str, LaunchConfig] = {}
    info: LaunchInfo | None = None
    for job in resp["jobs"]:
        if not job["ok"]:
            if job.get("error_class") == "NotApplicableError":  # the recipe says: not this model
                raise NotApplicableError(job["error_message"])
            raise InvocationError(f"recipe {recipe.module}: vLLM's wrapper could not be traced for {job['id']}: "
                                  f"{job['error']}", hint=_HINT)
        launch = job["launches"][job["selected"][0]]
        configs[job["id"]] = _config(job, launch, shapes[job["id"]], plan)
        if job["id"] == "FULL":
            info = _info(job, launch)
    return TritonPlan(full=configs["FULL"], small=configs["SMALL"], path="traced", launch=info,
                      versions=dict(resp.get("versions", {})))


def _size(recipe: Recipe, plan: TritonRecipe, dims: dict[str, Any], workload: str, small: bool,
          cfg: str) -> dict[str, Any]:
    try:
        return plan.shapes(dims, workload, budget_bytes(), small)
    except NotApplicableError:
        raise
    except Exception as e:
        hint = e.hint if isinstance(e, InvocationError) and e.hint else _HINT
        msg = e.message if isinstance(e, InvocationError) else str(e)
        raise InvocationError(f"recipe {recipe.module} cannot size {cfg} for model {dims.get('model_id', '?')} "
                              f"({type(e).__name__}: {msg})", hint=hint) from e


def _arg(param: str, a: dict[str, Any]) -> Arg:
    if a["kind"] == "tensor":
        return TensorView(param, a["base"], tuple(a["shape"]), tuple(a["stride"]), int(a["offset"]), a["dtype"])
    return Scalar(param, a["value"])


def _config(job: dict[str, Any], launch: dict[str, Any], shp: dict[str, Any], plan: TritonRecipe) -> LaunchConfig:
    buffers = tuple(Buffer(n, tuple(b["shape"]), b["dtype"], InitSpec.of(b["init"]))
                    for n, b in sorted(job["buffers"].items()))
    args = tuple(_arg(p, launch["args"][p]) for p in launch["params"] if launch["args"].get(p) is not None)
    opts = dict(launch["options"])
    num_warps = opts.pop("num_warps", None) or TRITON_DEFAULT_WARPS
    num_stages = opts.pop("num_stages", None) or TRITON_DEFAULT_STAGES
    live = sum(math.prod(b["shape"]) * b["itemsize"] for b in job["buffers"].values())
    flops, nbytes = plan.flops_bytes(shp, launch)
    return LaunchConfig(
        grid=tuple(launch["grid"]), num_warps=int(num_warps), num_stages=int(num_stages),
        options={k: v for k, v in sorted(opts.items()) if v is not None},
        constexprs={n: launch["constexprs"][n] for n in launch["constexpr_names"]},
        buffers=buffers, args=args, live_bytes=int(live),
        flops=float(flops) if flops else None, bytes=float(nbytes or 0.0),
        shapes={k: v for k, v in sorted(shp.items()) if isinstance(v, (int, float, str, bool)) or v is None},
    )


def _info(job: dict[str, Any], launch: dict[str, Any]) -> LaunchInfo:
    site = launch.get("site")
    return LaunchInfo(
        params=tuple(launch["params"]),
        site=Site(site["file"], site["line"], site["function"]) if site else None,
        signature=launch.get("signature"), attrs=launch.get("attrs") or {},
        autotune=launch.get("autotune"), heuristics=tuple(launch.get("heuristics") or ()),
        constexpr_defaulted=tuple(launch.get("constexpr_defaulted") or ()),
        count=len(job["selected"]),
        all_launches=tuple(f"{x['fn']['qualname']}{x['grid']}" for x in job["launches"]),
    )


__all__ = ["traced_plan"]
