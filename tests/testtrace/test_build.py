"""A recorded capture (tests/testtrace/data, from the real worker on vLLM 0.33.0's causal-conv1d
test) becomes a launch plan; contents it cannot make valid are refused, never guessed."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from vkc.invoke.triton.plan import InitSpec, Scalar, TensorView
from vkc.invoke.triton.testtraced import Refused, capture_plan
from vkc.testtrace import Capture

DATA = Path(__file__).parent / "data"


def capture(name: str = "causal_conv1d_update") -> Capture:
    return Capture.from_json(json.loads((DATA / f"{name}.json").read_text()))


def _with(cap: Capture, **buffer_changes) -> Capture:
    d = copy.deepcopy(cap.to_json())
    for name, change in buffer_changes.items():
        d["buffers"][name].update(change)
    return Capture.from_json(d)


def test_plan_from_capture():
    cap = capture()
    assert cap.ok and cap.kernel.endswith(":_causal_conv1d_update_kernel")
    plan = capture_plan(cap)
    full = plan.full
    assert plan.small == full and plan.traced
    assert full.grid == (2, 8)
    assert full.buffer("conv_state_indices").init == InitSpec("values", ([1, 2],))   # the test's own indices
    assert full.buffer("x").init.kind == "randn"
    assert full.arg("batch") == Scalar("batch", 2)
    # the output is a view of the input buffer (the wrapper writes in place): one buffer, two views
    assert full.arg("o_ptr") == TensorView("o_ptr", "x", (2, 2048, 1), (2048, 1, 1), 0, "bfloat16")
    assert full.constexprs["KERNEL_WIDTH"] == 4 and full.constexprs["BLOCK_N"] == 256
    assert plan.launch is not None and plan.launch.site is not None
    assert plan.launch.site.function == "causal_conv1d_update"
    assert plan.launch.signature is not None and set(plan.launch.params) == set(plan.launch.signature)
    assert full.shapes["test"] == "tests/kernels/mamba/test_causal_conv1d.py::test_causal_conv1d_update"


@pytest.mark.parametrize(("values", "init"), [
    ([0, 0, 0], InitSpec("zeros")), ([5, 5], InitSpec("const", (5,))), ([3, 5, 7, 9], InitSpec("arange", (3, 2))),
    ([4, 1], InitSpec("values", ([4, 1],))),
])
def test_integer_contents_compacted(values, init):
    cap = _with(capture(), conv_state_indices={"values": values, "numel": len(values)})
    assert capture_plan(cap).full.buffer("conv_state_indices").init == init


@pytest.mark.parametrize(("change", "why"), [
    ({"values": None, "numel": 100000}, "contents were not captured"),
    ({"earlier": ["vllm.x:_other_kernel"]}, "earlier launch"),
    ({"dtype": "int64", "values": [140000000000000, 2]}, "host addresses"),
    ({"device": "meta"}, "not the CPU"),
])
def test_refused(change, why):
    with pytest.raises(Refused, match=why):
        capture_plan(_with(capture(), conv_state_indices=change))


def test_refused_object_argument_and_int_view_of_float():
    d = capture().to_json()
    d["launch"]["args"]["batch"] = {"kind": "scalar", "value": {"__repr__": "<object>"}, "type": "object"}
    with pytest.raises(Refused, match="not a scalar"):
        capture_plan(Capture.from_json(d))
    d = capture().to_json()
    d["buffers"]["conv_state_indices"]["dtype"] = "bfloat16"
    with pytest.raises(Refused, match="views a bfloat16 buffer"):
        capture_plan(Capture.from_json(d))


def test_failed_capture_is_refused_with_its_reason():
    cap = Capture(False, "tests/kernels/t.py::test_x", "m:k", reason="fixture dist_init not provided", category="fixture")
    with pytest.raises(Refused, match="dist_init"):
        capture_plan(cap)


def test_json_round_trip():
    cap = capture()
    assert Capture.from_json(json.loads(json.dumps(cap.to_json()))) == cap


def test_large_integer_contents_as_runs():
    # a large storage the worker kept as runs (a zeroed KV cache with one written page)
    cap = _with(capture(), conv_state_indices={"values": None, "numel": 100000, "runs": [[0, 7, 0], [50000, 16, 49984]]})
    assert capture_plan(cap).full.buffer("conv_state_indices").init == InitSpec("runs", ([0, 7, 0], [50000, 16, 49984]))
    one = _with(capture(), conv_state_indices={"values": None, "numel": 100000, "runs": [[0], [100000]]})
    assert capture_plan(one).full.buffer("conv_state_indices").init == InitSpec("zeros")
    # verbatim values past the literal limit are written as runs too, never refused for their count
    values = [1] * 70000 + [2] * 30000
    big = _with(capture(), conv_state_indices={"values": values, "numel": len(values)})
    assert capture_plan(big).full.buffer("conv_state_indices").init == InitSpec("runs", ([1, 2], [70000, 30000]))


def test_runs_keep_the_refusals():
    with pytest.raises(Refused, match="host addresses"):
        capture_plan(_with(capture(), conv_state_indices={"values": None, "dtype": "int64", "numel": 100000,
                                                          "runs": [[140000000000000, 0], [1, 99999]]}))
    with pytest.raises(Refused, match="may write it"):
        capture_plan(_with(capture(), conv_state_indices={"values": None, "numel": 100000, "runs": [[0], [100000]],
                                                          "earlier": ["vllm.x:_store_kernel"]}))


def test_read_only_earlier_launch_keeps_the_contents():
    # the worker lists a kernel that only reads the buffer under read_by, not earlier
    cap = _with(capture(), conv_state_indices={"read_by": ["vllm.x:_reader_kernel"], "earlier": []})
    assert capture_plan(cap).full.buffer("conv_state_indices").init == InitSpec("values", ([1, 2],))
