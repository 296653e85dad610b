"""The worker's own RMSNorm guard, without vLLM: a norm module whose span holds no vLLM op warns."""
from __future__ import annotations

from vkc.modeltrace.recorder import Recorder


class RMSNorm:  # the guard keys on the class name, as vLLM's RMSNorm / GemmaRMSNorm
    pass


def _run(rec: Recorder, events: list[dict]) -> None:
    m = RMSNorm()
    rec.module_names = {id(m): "model.layers.3.input_layernorm"}
    rec.active = True
    rec.pre_hook(m, ())
    for e in events:
        rec.add(e)
    rec.post_hook(m, (), None)


def test_native_norm_path_is_reported():
    rec = Recorder()
    _run(rec, [{"kind": "aten", "name": "aten::pow"}, {"kind": "aten", "name": "aten::mean"}])
    assert len(rec.warnings) == 1 and "model.layers.3.input_layernorm" in rec.warnings[0]
    assert rec.events[0]["layer"] == 3


def test_vllm_norm_op_is_not_reported():
    rec = Recorder()
    _run(rec, [{"kind": "op", "name": "_C::fused_add_rms_norm"}])
    assert rec.warnings == []


def test_ir_dispatcher_op_alone_is_reported():
    """``vllm_ir::rms_norm`` runs whatever the IR priority picked: on its own it is no proof."""
    rec = Recorder()
    _run(rec, [{"kind": "op", "name": "vllm_ir::rms_norm"}, {"kind": "aten", "name": "aten::rsqrt"}])
    assert len(rec.warnings) == 1


def _run_with_dispatch(rec: Recorder, events: list[dict], dispatches: list[tuple[str, str, bool]]) -> None:
    m = RMSNorm()
    rec.module_names = {id(m): "model.layers.3.input_layernorm"}
    rec.active = True
    rec.pre_hook(m, ())
    rec.ir_dispatches.extend(dispatches)
    for e in events:
        rec.add(e)
    rec.post_hook(m, (), None)


NATIVE = [{"kind": "op", "name": "vllm_ir::rms_norm"}, {"kind": "aten", "name": "aten::rsqrt"}]


def test_native_path_chosen_by_vllm_priority_is_not_reported():
    """GemmaRMSNorm passes an fp32 weight with bf16 input: vllm_c's supports_args declines it and
    vLLM's own priority list picks native. That is vLLM's choice, not the silent fallback."""
    rec = Recorder()
    _run_with_dispatch(rec, NATIVE, [("rms_norm", "native", True)])
    assert rec.warnings == []


def test_native_path_without_priority_is_reported():
    rec = Recorder()
    _run_with_dispatch(rec, NATIVE, [("rms_norm", "native", False)])
    assert len(rec.warnings) == 1 and "IR op priority was not applied" in rec.warnings[0]


def test_dispatches_before_the_norm_do_not_count():
    rec = Recorder()
    rec.ir_dispatches.append(("rms_norm", "vllm_c", True))      # an earlier norm's dispatch
    _run(rec, NATIVE)
    assert len(rec.warnings) == 1
