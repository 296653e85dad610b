"""Host-built tables of device addresses (vLLM's LoRA weight-pointer tables): the trace says what each
entry points at (``runner["pointers"]``), the plan makes one real allocation per entry of the target's
size and dtype, weight-filled, and the script's table holds their addresses."""
from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from vkc.invoke.triton.modeltraced.inits import Refused, StepFacts, init_for
from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.contents import PointerTarget, step_pointers
from vkc.modeltrace.records import StepSpec, StepTrace, TensorArg, TracedEvent

TEMPLATE = Path(__file__).parents[2] / "src/vkc/invoke/triton/templates/invoke.py.j2"
SPEC = StepSpec("decode", 4, 1024)


def _entry(storage: str, nbytes: int, shape: list[int]) -> dict:
    return {"storage": storage, "origin": f"lora:{storage}", "nbytes": nbytes, "offset": 0, "dtype": "bfloat16",
            "shape": shape}


def _trace(pointers: dict) -> SimpleNamespace:
    return SimpleNamespace(notes={"features": {"steps": {SPEC.id: {"runner": {"pointers": pointers}}}}})


def _table(n: int) -> TensorArg:
    return TensorArg("uint64", (n,), (1,), 0, 8, "s9", 8 * n, "unknown")


def _facts(pointers: dict, launch: TracedEvent) -> StepFacts:
    return StepFacts(StepTrace(SPEC, 256, (launch,), 0.0), 1024, 16, pointers=pointers)


def test_the_trace_note_reads_back_as_targets():
    got = step_pointers(_trace({"s9": [_entry("s1", 65536, [1, 16, 2048])]}), SPEC)  # type: ignore[arg-type]
    assert got == {"s9": (PointerTarget("s1", "lora:s1", 65536, "bfloat16", (1, 16, 2048), 0),)}
    assert step_pointers(SimpleNamespace(notes={}), SPEC) == {}  # type: ignore[arg-type]


def test_a_pointer_table_gets_one_weight_filled_allocation_per_entry():
    raw = {"s9": [_entry("s1", 1 << 16, [1, 16, 2048]), _entry("s2", 1 << 14, [1, 512, 16]),
                  _entry("s3", 1 << 14, [1, 512, 16])]}
    table = _table(3)
    launch = TracedEvent(0, "triton", "vllm.lora.ops.triton_ops.lora_expand_op:_lora_expand_kernel", None, None,
                         (("lora_ptr", table),), grid=(1,))
    got = init_for("lora_ptr", table, launch, _facts(step_pointers(_trace(raw), SPEC), launch))  # type: ignore[arg-type]
    s_in, s_r = round(1 / math.sqrt(2048), 6), round(1 / math.sqrt(16), 6)
    assert got == InitSpec("pointer_targets", (((1 << 16, "bfloat16", 0, s_in), (1 << 14, "bfloat16", 0, s_r),
                                               (1 << 14, "bfloat16", 0, s_r)),))


def test_a_table_of_another_size_is_refused():
    raw = {"s9": [_entry("s1", 1 << 16, [1, 16, 2048])]}
    table = _table(2)
    launch = TracedEvent(0, "triton", "m:k", None, None, (("lora_ptr", table),), grid=(1,))
    with pytest.raises(Refused, match="holds 1 entries, its buffer 2"):
        init_for("lora_ptr", table, launch, _facts(step_pointers(_trace(raw), SPEC), launch))  # type: ignore[arg-type]


def _template_init(tmp_path: Path) -> dict:
    """The template's ``_init_tensor`` (plain Python between two of its lines) as a module."""
    text = TEMPLATE.read_text()
    start, end = text.index("_POINTER_TARGETS = []"), text.index("def _view(")
    assert not re.search(r"{[{%]", text[start:end])
    path = tmp_path / "inits.py"
    path.write_text("import math\nimport torch\n" + text[start:end])
    spec = importlib.util.spec_from_file_location("vkc_template_inits", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return vars(mod)


def test_the_script_table_holds_the_addresses_of_live_allocations(tmp_path):
    ns = _template_init(tmp_path)
    spec = ("pointer_targets", ((64, "bfloat16", 0, 0.5), (32, "float32", 2, 1.0)))
    t = ns["_init_tensor"]((2,), "uint64", spec, "cpu")
    a, b = ns["_POINTER_TARGETS"]
    assert (a.dtype, a.numel(), b.dtype, b.numel()) == (torch.bfloat16, 32, torch.float32, 8)
    assert t.view(torch.int64).tolist() == [a.data_ptr(), b.data_ptr() + 2 * 4]
    assert float(a.float().abs().sum()) > 0            # randn data, not zeros


def test_a_target_whose_contents_the_trace_knows_gets_them():
    """vLLM's block tables behind ``BlockTables.block_table_ptrs``: the staged block ids, not random data."""
    from vkc.modeltrace.contents import Contents

    raw = {"s9": [{"storage": "s2", "origin": "block_tables:block_table[0]", "nbytes": 32, "offset": 0,
                   "dtype": "int32", "shape": [2, 4]}]}
    table = _table(1)
    launch = TracedEvent(0, "triton", "vllm.v1.worker.gpu.block_table:_gather_block_tables_kernel", None, None,
                         (("src_block_table_ptrs", table),), grid=(1, 2))
    known = {"s2": Contents(((1, 1), (2, 1), (0, 2), (3, 1), (4, 1), (0, 2)))}
    facts = StepFacts(StepTrace(SPEC, 256, (launch,), 0.0), 1024, 16, known=known,
                      pointers=step_pointers(_trace(raw), SPEC))  # type: ignore[arg-type]
    got = init_for("src_block_table_ptrs", table, launch, facts)
    (entry,) = got.params[0]
    assert entry[:3] == (32, "int32", 0) and entry[4] == ("values", [1, 2, 0, 0, 3, 4, 0, 0])
    wrong = {"s2": Contents(((0, 3),))}         # not the whole target: the entry keeps its plain fill
    facts = StepFacts(StepTrace(SPEC, 256, (launch,), 0.0), 1024, 16, known=wrong,
                      pointers=step_pointers(_trace(raw), SPEC))  # type: ignore[arg-type]
    assert len(init_for("src_block_table_ptrs", table, launch, facts).params[0][0]) == 4


def test_the_script_fills_a_target_from_its_init_spec(tmp_path):
    ns = _template_init(tmp_path)
    spec = ("pointer_targets", ((16, "int32", 0, 1.0, ("values", [5, 6, 7, 8])), (8, "int32", 1, 1.0, ("const", 3))))
    t = ns["_init_tensor"]((2,), "uint64", spec, "cpu")
    a, b = ns["_POINTER_TARGETS"][-2:]
    assert a.tolist() == [5, 6, 7, 8] and b.tolist() == [3, 3]
    assert t.view(torch.int64).tolist() == [a.data_ptr(), b.data_ptr() + 4]
