"""The worker side of the CUDA half without vLLM: made-up compiled ops registered as the worker's
recording stand-ins, one test body run under :class:`OpCallMode` (torch on the CPU only)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vkc.modeltrace.records import ScalarArg, TensorArg, event_from_worker
from vkc.testtrace import standins
from vkc.testtrace.opcall import OpCallMode, OpCaptured, patched_opcheck

BINDINGS = '''
TORCH_LIBRARY_FRAGMENT(_vkc_optest, ops) {
  ops.def("prep(Tensor x) -> Tensor");
  ops.def("reader(Tensor x) -> ()");
  ops.def("writer(Tensor! x) -> ()");
  ops.def("target(Tensor! out, Tensor idx, Tensor lens, Tensor garbage, Tensor derived, Tensor? opt,"
          " int n, float eps, int[] dims) -> ()");
}
'''


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree")
    (root / "csrc").mkdir()
    (root / "csrc" / "torch_bindings.cpp").write_text(BINDINGS)
    standins.register_cpu_ops(str(root))
    return torch.ops._vkc_optest


def _body(ops, call=None):
    idx = torch.arange(6, dtype=torch.int32).view(2, 3)      # the test's own values
    ops.reader(idx)                                          # read by a stand-in: still the test's
    lens = torch.empty(4, dtype=torch.int64)
    lens[:2].fill_(7)                                        # half written: not yet the test's
    lens.copy_(torch.tensor([7, 7, 0, 1]))                   # all written after torch.empty: the test's
    garbage = torch.empty(3, dtype=torch.int64)
    garbage[1:].fill_(0)                                     # one element never written
    made = ops.prep(idx)                                     # a stand-in's guessed result
    derived = made + 1                                       # computed from it
    out = torch.zeros(4, dtype=torch.int32)
    ops.writer(out)                                          # written by a stand-in, not run
    (call or ops.target)(out, idx, lens, garbage, derived, None, 5, 1e-6, [1, 2])
    return idx


def test_records_the_call_the_test_makes(ops):
    standins.TOUCHED.clear()
    mode = OpCallMode(frozenset({"_vkc_optest::target"}))
    with pytest.raises(OpCaptured), mode:
        _body(ops)
    assert mode.called == ["_vkc_optest::reader", "_vkc_optest::prep", "_vkc_optest::writer",
                           "_vkc_optest::target"]
    ev = event_from_worker(mode.call["event"])
    assert (ev.kind, ev.name) == ("op", "_vkc_optest::target")
    assert ev.extra["written"] == ["out"] and ev.extra["overload"] == "default"
    assert ev.extra["schema"].startswith("target(Tensor! out, Tensor idx, Tensor lens,")   # the tree's own text
    assert [n for n, _a in ev.args] == ["out", "idx", "lens", "garbage", "derived", "opt", "n", "eps", "dims"]
    args = dict(ev.args)
    assert args["idx"] == TensorArg("int32", (2, 3), (3, 1), 0, 4, "s1", 24, "test")
    assert {n: a.producer for n, a in ev.tensors()} == {
        "out": "noop:_vkc_optest::writer", "idx": "test", "lens": "test", "garbage": "uninit",
        "derived": "noop:_vkc_optest::prep"}
    assert args["opt"] == ScalarArg(None) and args["n"] == ScalarArg(5) and args["dims"] == ScalarArg([1, 2])
    # contents only for the storages whose values the test made
    assert mode.call["contents"] == {"s1": [[0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [5, 1]],
                                     "s2": [[7, 2], [0, 1], [1, 1]]}


def test_opcheck_calls_the_op_once_on_the_tests_own_tensors(ops):
    standins.TOUCHED.clear()
    mode = OpCallMode(frozenset({"_vkc_optest::target"}))
    with pytest.raises(OpCaptured), patched_opcheck(), mode:
        _body(ops, call=lambda *a: torch.library.opcheck(ops.target, a))
    assert torch.library.opcheck.__module__.startswith("torch")      # restored
    assert sorted(mode.call["contents"]) == ["s1", "s2"]


def test_a_test_without_the_target_finishes(ops):
    standins.TOUCHED.clear()
    mode = OpCallMode(frozenset({"_vkc_optest::not_called"}))
    with mode:
        _body(ops)
    assert mode.call is None and mode.called[-1] == "_vkc_optest::target"
