"""The test-size map: which bundled model sizes a kernel that only vLLM's tests reach.

``vkc collect --all`` with no ``--model`` sizes a kernel the reach map does not name at the first
default model that applies (``meta-llama/Llama-3.1-8B-Instruct`` for almost every kernel).  A kernel
whose example comes from a vLLM test (:mod:`vkc.testtrace`) is test-traced only when the test's size
parameters map from the model (``num_experts``, ``topk``, ``kv_lora_rank`` ...); a dense model maps
none of an MoE or MLA test's, so such a kernel came out ``vllm-sized`` although a bundled model fits
its test.  The rule here, static and fixed:

* the tests are the ones the invoker would run for the kernel, in its order (Triton:
  :func:`vkc.invoke.triton.testtraced.attempt.jobs_for`; CUDA: :func:`vkc.testtrace.op_tests`);
* a model's score is the number of distinct size-parameter names of those tests
  (:data:`vkc.testtrace.SIZE_NAMES`) its dimensions give a value for;
* the models are :func:`vkc.batch.reach.reach_order` (the defaults first, then the other bundled
  ones, sorted); the first with the highest score wins, and only when it scores more than the
  default model (so a kernel the default already sizes keeps it: no churn in the artifacts).

:func:`model_map_from_tests` answers qualified kernel -> model id for the kernels it moves.  The job's
command names the model (``--model Qwen/Qwen3-30B-A3B``), so the artifact regenerates as written;
should that collect fail, the kernel is collected as without the map (one warning line).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from vkc.records import KernelIndex

__all__ = ["model_map_from_tests", "score", "size_names"]


def size_names(tests: Iterable[object]) -> frozenset[str]:
    """The size-parameter names the tests' parametrize marks carry and the harness would map
    (:func:`vkc.testtrace.harness.mappable_names`)."""
    from vkc.testtrace.harness import mappable_names

    return frozenset().union(*(mappable_names(getattr(t, "params", ()), str(getattr(t, "file", ""))) for t in tests))


def score(names: Iterable[str], dims: Mapping[str, object]) -> int:
    """How many of ``names`` the model's dims (:func:`...attempt.model_dims`) give an integer for."""
    from vkc.testtrace import SIZE_NAMES

    return sum(1 for n in set(names) if isinstance(dims.get(SIZE_NAMES[n]), int))


def _tests(index: KernelIndex, skip: Iterable[str]) -> dict[str, list[object]]:
    from vkc.invoke.cuda.recipe_path import recipe_in_tree
    from vkc.invoke.triton.recipes import get_recipe
    from vkc.invoke.triton.testtraced.attempt import jobs_for
    from vkc.testtrace import build_reach_index, op_tests

    skipped = set(skip)
    live = [k for k in index.kernels if k.role == "entry" and not k.rocm_only and k.qualified not in skipped]
    reach = build_reach_index(index.tree, index.kernels)
    reached = set(reach.kernels)
    out: dict[str, list[object]] = {}
    for k in live:
        if k.lang == "triton" and k.qualified in reached and get_recipe(k.qualified) is None:
            out[k.qualified] = [j.test for j in jobs_for(reach, k.qualified, k.line, {})]
    cuda = [k.qualified for k in live if k.lang == "cuda" and recipe_in_tree(index.tree.root, k.qualified)[0] is None]
    for q, tests in op_tests(index.tree, cuda).items():
        if tests:
            out[q] = list(tests)
    return out


def model_map_from_tests(index: KernelIndex, *, skip: Iterable[str] = (), models: Sequence[str] | None = None
                  ) -> dict[str, str]:
    """qualified -> the bundled model that maps more of its tests' size parameters than the default
    model does (see the module docstring); ``skip``: kernels sized elsewhere (the reach map's)."""
    from vkc.batch.reach import reach_order
    from vkc.invoke.triton.testtraced.attempt import model_dims
    from vkc.modelcfg import load_model_cached
    from vkc.testtrace import tests_enabled

    if not tests_enabled():
        return {}
    order = list(reach_order(models))
    dims = [model_dims(load_model_cached(m)) for m in order]
    out: dict[str, str] = {}
    for q, tests in sorted(_tests(index, skip).items()):
        names = size_names(tests)
        if not names:
            continue
        scores = [score(names, d) for d in dims]
        best = max(range(len(order)), key=lambda i: (scores[i], -i))
        if scores[best] > scores[0]:
            out[q] = order[best]
    return out
