"""Stage ``testtrace``: vLLM's own kernel tests as sources of Triton launches and CUDA op calls.

* :func:`build_reach_index` (tree, kernels) -> :class:`ReachIndex`: statically (``ast``), which test
  function of ``tests/**`` calls which kernel's wrapper (:mod:`.static`);
* :func:`capture_tests` (tree, [:class:`TestJob`]) -> [:class:`Capture`]: runs each test in the
  worker subprocess (``python -m vkc.testtrace.worker``) on CPU tensors, its size parameters mapped
  from the model's dimensions where their names say which, and records the target kernel's first
  launch without running it, plus the contents of its small integer buffers; cached on disk per
  (tree, test, parameters, kernel) (:mod:`.trace`).
* The CUDA half: :func:`op_reach` (tree) -> :class:`ReachIndex` of the tests that reach a compiled
  op launching a CUDA kernel (:mod:`.static_cuda`); :func:`op_calls_for` (tree, kernel, model dims)
  -> [:class:`OpCallCapture`]: the op call each test makes, as a model trace's op event plus the
  contents of the integer storages the test built (:mod:`.opcalls`, worker side :mod:`.opcall`).

``VKC_TEST_TRACE=0`` disables the source (:func:`tests_enabled`).  The Triton invoker turns a
capture into a launch plan (:mod:`vkc.invoke.triton.testtraced`).
"""
from vkc.testtrace.harness import DTYPE_NAMES, SIZE_NAMES
from vkc.testtrace.opcalls import MAX_TESTS, mode_of, op_call_of, op_calls_for, op_captures, op_jobs, op_reach, op_tests
from vkc.testtrace.records import MODES, Capture, OpCallCapture, Reach, ReachIndex, VllmTest
from vkc.testtrace.static import build_reach_index
from vkc.testtrace.static_cuda import build_op_reach_index
from vkc.testtrace.trace import TestJob, capture_tests, tests_enabled

__all__ = ["DTYPE_NAMES", "MAX_TESTS", "MODES", "SIZE_NAMES", "Capture", "OpCallCapture", "Reach", "ReachIndex",
           "TestJob", "VllmTest", "build_op_reach_index", "build_reach_index", "capture_tests", "mode_of",
           "op_call_of", "op_calls_for", "op_captures", "op_jobs", "op_reach", "op_tests", "tests_enabled"]
