"""Contents of a storage vLLM allocated empty and an earlier launch of the step wrote before this one
reads it (the rejection sampler's ``num_sampled``): the earlier kernel's rule, else a refusal for an
integer one (never uninitialised memory read as an index), random data for a float one."""
from __future__ import annotations

import pytest

from vkc.invoke.triton.modeltraced.inits import Refused, StepFacts, init_for
from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import StepSpec, StepTrace, TensorArg, TracedEvent

MOD = "vllm.v1.worker.gpu.spec_decode.rejection_sampler_utils:"


def _t(base: str, dtype: str = "int32") -> TensorArg:
    return TensorArg(dtype, (64,), (1,), 0, 4, base, 256, "alloc")


def _ev(i: int, kernel: str, **tensors: TensorArg) -> TracedEvent:
    return TracedEvent(i, "triton", MOD + kernel, None, None, tuple(tensors.items()), grid=(64,))


def _facts(*events: TracedEvent) -> StepFacts:
    return StepFacts(StepTrace(StepSpec("decode", 64, 4096), 256, events, 0.0), 1024, 16)


def test_the_earliest_writer_with_a_rule_decides():
    s = _t("s1")
    rej = _ev(0, "_rejection_kernel", num_sampled_ptr=s)
    res = _ev(1, "_resample_kernel", rejected_step_ptr=s)          # reads it too, has no rule
    ins = _ev(2, "_insert_resampled_kernel", num_sampled_ptr=s)
    facts = _facts(rej, res, ins)
    assert init_for("num_sampled_ptr", s, ins, facts) == InitSpec("const", (0,))


def test_an_integer_written_by_a_kernel_without_a_rule_is_refused():
    s = _t("s2")
    first = _ev(0, "_some_kernel", out_ptr=s)
    user = _ev(1, "_insert_resampled_kernel", num_sampled_ptr=s)
    with pytest.raises(Refused, match=r"written by an earlier launch of the step \(_some_kernel, as out_ptr\)"):
        init_for("num_sampled_ptr", s, user, _facts(first, user))


def test_the_first_launch_to_touch_it_writes_it():
    s = _t("s3")
    only = _ev(0, "_rejection_kernel", num_sampled_ptr=s)
    assert init_for("num_sampled_ptr", s, only, _facts(only)) == InitSpec("empty")


def test_floats_an_earlier_kernel_made_are_data_and_sums_of_exp_are_at_least_one():
    m, e = _t("s4", "float32"), _t("s5", "float32")
    stats = _ev(0, "_compute_local_logits_stats_kernel", target_local_max_ptr=m, target_local_sumexp_ptr=e)
    rej = _ev(1, "_rejection_kernel", target_local_max_ptr=m, target_local_sumexp_ptr=e)
    facts = _facts(stats, rej)
    assert init_for("target_local_max_ptr", m, rej, facts) == InitSpec("randn")
    assert init_for("target_local_sumexp_ptr", e, rej, facts) == InitSpec("uniform", (1.0, 4.0))


def test_an_earlier_argmax_is_a_token_id():
    a = _t("s6", "int64")
    stats = _ev(0, "_compute_local_logits_stats_kernel", target_local_argmax_ptr=a)
    rej = _ev(1, "_rejection_kernel", target_local_argmax_ptr=a)
    assert init_for("target_local_argmax_ptr", a, rej, _facts(stats, rej)) == InitSpec("const", (0,))
