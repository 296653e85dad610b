"""The test-traced source of the wrapper-compiled path: :func:`wrapped_from_tests`.

For a CUDA kernel no recipe covers and the model's step does not reproduce, vLLM's own tests under
``tests/kernels`` that call an op launching the kernel are run in the test worker
(:func:`vkc.testtrace.op_calls_for`: size parameters mapped from the model's dimensions where the
test has them) and the first recorded op call the wrapper-compiled program can reproduce becomes the
example.  Its mode is the capture's: ``test-traced`` when a size parameter came from the model, else
``vllm-sized``.  Integer storages take the contents the test made (recorded at the call); floating
ones are random.  Never raises for a capture it cannot use: the attempt carries the reason.
"""
from __future__ import annotations

from collections.abc import Sequence

from vkc.errors import VkcError
from vkc.invoke.core.provenance import InvocationMode
from vkc.records import Extraction, KernelEntry, ModelConfig, SourceTree
from vkc.testtrace.records import OpCallCapture

from .host import NotLaunched, WrapRefused
from .program import OpCall, invoke_wrapped
from .traced import WrappedAttempt

__all__ = ["op_call", "prefetch", "wrapped_from_captures", "wrapped_from_tests"]

NOTE = ("test-traced: the op call recorded inside {test} run on CPU tensors (fake H100 platform, nothing "
        "launched; the test stopped at the op's first call); integer contents are the test's, floating ones random")


def op_call(cap: OpCallCapture) -> OpCall:
    """One test capture as an :class:`OpCall` (its storages' recorded contents; the dispatch rules'
    verdict when the capture has one)."""
    launches = (cap.kernel,) if cap.launches else None
    return OpCall(cap.event, dict(cap.contents), cap.provenance_source, None, frozenset(), launches)


def wrapped_from_captures(captures: tuple[OpCallCapture, ...], tree: SourceTree, ex: Extraction,
                          model: ModelConfig, *, workload: str, why: str, command: str, name: str,
                          fallback_from: str | None = None) -> WrappedAttempt:
    """The first capture :func:`invoke_wrapped` reproduces, else the reasons of all of them."""
    refusals: list[str] = []
    for cap in captures:
        mode = InvocationMode.TEST_TRACED if cap.mode == "test-traced" else InvocationMode.VLLM_SIZED
        try:
            inv = invoke_wrapped(tree, ex, op_call(cap), None, mode=mode, model=model, workload=workload, why=why,
                                 command=command, name=name, notes=(NOTE.format(test=cap.test_id),),
                                 fallback_from=fallback_from)
        except (NotLaunched, WrapRefused) as e:
            refusals.append(f"{cap.test_id}: {e.message}")
            continue
        return WrappedAttempt(invocation=inv)
    if not refusals:
        return WrappedAttempt(note="test-traced: no vLLM test under tests/kernels recorded a call of an op "
                                   "launching this kernel")
    more = f" (and {len(refusals) - 1} more)" if len(refusals) > 1 else ""
    return WrappedAttempt(fallback=f"test-traced: no recorded op call reproducible by the wrapper-compiled path: "
                                   f"{refusals[0]}{more}")


def wrapped_from_tests(tree: SourceTree, ex: Extraction, model: ModelConfig, *, workload: str, why: str,
                       command: str, name: str, fallback_from: str | None = None) -> WrappedAttempt:
    """Run (or read from the capture cache) the tests that call an op launching ``ex``'s kernel, at the
    model's sizes, and make the example from the first reproducible call."""
    from vkc.invoke.triton.testtraced.attempt import model_dims
    from vkc.testtrace import op_calls_for, tests_enabled

    if not tests_enabled():
        return WrappedAttempt()
    try:
        captures = op_calls_for(tree, ex.kernel.qualified, model_dims(model, workload))
    except VkcError as e:
        return WrappedAttempt(fallback=f"test-traced: the test worker failed ({' '.join(e.message.split())[:300]})")
    return wrapped_from_captures(captures, tree, ex, model, workload=workload, why=why, command=command, name=name,
                                 fallback_from=fallback_from)


def prefetch(tree: SourceTree, kernels: Sequence[KernelEntry], model: ModelConfig, *, batch: int = 12,
             workers: int = 1, only: Sequence[str] | None = None, workload: str | None = None) -> int:
    """Run, ahead of the invoker and in worker batches (one vLLM import per batch), the test jobs
    :func:`wrapped_from_tests` would run for every CUDA kernel without a recipe (those in ``only``,
    when given), at ``model``'s sizes; the captures land in the disk cache.  Returns the number of
    kernels asked about."""
    from vkc.invoke.cuda.recipe_path import recipe_in_tree
    from vkc.invoke.triton.testtraced.attempt import model_dims
    from vkc.testtrace import op_captures, tests_enabled

    if not tests_enabled():
        return 0
    keep = None if only is None else set(only)
    wanted = [k.qualified for k in kernels if k.lang == "cuda" and not k.rocm_only
              and recipe_in_tree(tree.root, k.qualified)[0] is None and (keep is None or k.qualified in keep)]
    op_captures(tree, wanted, model_dims(model, workload), batch=batch, workers=workers)
    return len(wanted)
