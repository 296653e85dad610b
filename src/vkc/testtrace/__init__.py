"""Stage ``testtrace``: vLLM's own kernel tests as sources of Triton launches.

* :func:`build_reach_index` (tree, kernels) -> :class:`ReachIndex`: statically (``ast``), which test
  function of ``tests/kernels/**`` calls which kernel's wrapper (:mod:`.static`);
* :func:`capture_tests` (tree, [:class:`TestJob`]) -> [:class:`Capture`]: runs each test in the
  worker subprocess (``python -m vkc.testtrace.worker``) on CPU tensors, its size parameters mapped
  from the model's dimensions where their names say which, and records the target kernel's first
  launch without running it, plus the contents of its small integer buffers; cached on disk per
  (tree, test, parameters, kernel) (:mod:`.trace`).

``VKC_TEST_TRACE=0`` disables the source (:func:`tests_enabled`).  The Triton invoker turns a
capture into a launch plan (:mod:`vkc.invoke.triton.testtraced`).
"""
from vkc.testtrace.harness import DTYPE_NAMES, SIZE_NAMES
from vkc.testtrace.records import Capture, Reach, ReachIndex, VllmTest
from vkc.testtrace.static import build_reach_index
from vkc.testtrace.trace import TestJob, capture_tests, tests_enabled

__all__ = ["DTYPE_NAMES", "SIZE_NAMES", "Capture", "Reach", "ReachIndex", "TestJob", "VllmTest",
           "build_reach_index", "capture_tests", "tests_enabled"]
