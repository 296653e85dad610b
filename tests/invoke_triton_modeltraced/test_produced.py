"""Contents an earlier vLLM kernel of the step leaves (:mod:`vkc.invoke.triton.modeltraced.produced`), buffers
vLLM made with torch.zeros, and the recorder's hand-over of producers between steps."""
from __future__ import annotations

from vkc.invoke.triton.modeltraced.inits import StepFacts, init_for
from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.recorder import Recorder
from vkc.modeltrace.records import ScalarArg, StepSpec, StepTrace, TensorArg, TracedEvent

DECODE = StepSpec("decode", 4, 100)


def _t(base: str, shape: tuple[int, ...], producer: str, fill: float | None = None) -> TensorArg:
    n = 1
    for d in shape:
        n *= d
    stride = (shape[1], 1) if len(shape) == 2 else (1,)
    return TensorArg("int32", shape, stride, 0, 4, base, 4 * n, producer, fill=fill)


def _facts(*events: TracedEvent) -> StepFacts:
    return StepFacts(StepTrace(DECODE, 4, events, 0.0), 64, 16)


def test_token_request_mapping_output_is_each_tokens_request():
    out = _t("s1", (8,), "unknown")
    mapping = TracedEvent(0, "triton", "vllm.v1.attention.ops.metadata:_token_request_mapping_kernel", None, None,
                          (("query_start_loc", _t("s0", (5,), "metadata:query_start_loc")), ("output", out),
                           ("num_reqs", ScalarArg(4)), ("num_mapped", ScalarArg(3)), ("num_tokens", ScalarArg(4))))
    reader = TracedEvent(1, "triton", "m:remap", None, None, (("req_id_ptr", _t("s1", (4,), "event:0")),))
    got = init_for("req_id_ptr", _t("s1", (4,), "event:0"), reader, _facts(mapping, reader))
    assert got == InitSpec("values", ([0, 1, 2, 0],))   # 3 mapped, the 4th token 0


def test_cooperative_topk_rows_hold_distinct_ids_below_each_length():
    out = _t("s2", (4, 8), "event:0")
    topk = TracedEvent(1, "op", "_C::cooperative_topk", None, None,
                       (("logits", TensorArg("float32", (4, 200), (200, 1), 0, 4, "s3", 3200, "event:0")),
                        ("lengths", _t("s4", (4, 1), "metadata:seq_lens")), ("output", out),
                        ("k", ScalarArg(8)), ("max_seq_len", ScalarArg(100))))
    reader = TracedEvent(2, "triton", "m:remap", None, None, (("token_indices_ptr", _t("s2", (4, 8), "event:1")),))
    got = init_for("token_indices_ptr", _t("s2", (4, 8), "event:1"), reader, _facts(topk, reader))
    assert got == InitSpec("topk_rows", (8, [100, 100, 100, 100], 8))


def test_a_zeros_buffer_unwritten_since_is_its_constant():
    counts = _t("s5", (4,), "alloc", fill=0.0)
    ev = TracedEvent(0, "triton", "m:k", None, None, (("valid_count_ptr", counts),))
    assert init_for("valid_count_ptr", counts, ev, _facts(ev)) == InitSpec("const", (0,))


def test_a_new_step_hands_earlier_writers_over_by_name():
    rec = Recorder()
    rec.storages[1] = {"id": "s0", "nbytes": 4, "producer": "event:0", "first": "alloc"}
    rec.storages[2] = {"id": "s1", "nbytes": 4, "producer": "metadata:seq_lens", "first": "metadata:seq_lens"}
    rec.events = [{"index": 0, "name": "_C::cooperative_topk"}]
    rec.reset_step()
    assert rec.storages[1]["producer"] == "earlier-step:_C::cooperative_topk"
    assert rec.storages[2]["producer"] == "metadata:seq_lens" and rec.events == []


def _seq_metadata(seq_idx: TensorArg, query_start: TensorArg, actual: int, pad: int) -> TracedEvent:
    return TracedEvent(0, "triton", "vllm.models.inkling.nvidia.ops.sconv:_seq_metadata_kernel", None, None,
                       (("qsl_ptr", _t("s0", (5,), "metadata:query_start_loc")), ("seq_idx_ptr", seq_idx),
                        ("query_start_ptr", query_start), ("num_reqs", ScalarArg(4)),
                        ("num_actual_tokens", ScalarArg(actual)), ("num_padded_tokens", ScalarArg(pad))))


def test_inkling_seq_metadata_readers_stay_refused_without_the_sconv_groups_slots():
    seq_idx, starts = _t("s1", (8,), "unknown"), _t("s2", (8,), "unknown")
    meta = _seq_metadata(seq_idx, starts, 4, 6)
    reader = TracedEvent(1, "triton", "m:sconv", None, None, (("seq_idx_ptr", _t("s1", (6,), "event:0")),))
    import pytest

    from vkc.invoke.triton.modeltraced.initbase import Refused
    with pytest.raises(Refused, match="slot mapping"):
        init_for("seq_idx_ptr", _t("s1", (6,), "event:0"), reader, _facts(meta, reader))


def test_inkling_seq_metadata_prefill_query_start_is_the_requests_first_row():
    from vkc.invoke.triton.modeltraced.produced import _seq_metadata as rule

    seq_idx, starts = _t("s1", (6,), "unknown"), _t("s2", (6,), "unknown")
    meta = TracedEvent(0, "triton", "vllm.models.inkling.nvidia.ops.sconv:_seq_metadata_kernel", None, None,
                       (("qsl_ptr", _t("s0", (3,), "metadata:query_start_loc")), ("seq_idx_ptr", seq_idx),
                        ("query_start_ptr", starts), ("num_reqs", ScalarArg(2)),
                        ("num_actual_tokens", ScalarArg(6)), ("num_padded_tokens", ScalarArg(6))))
    facts = StepFacts(StepTrace(StepSpec("prefill", 2, 0, 3), 4, (meta,), 0.0), 64, 16)
    spec = facts.spec          # the rule itself (kept for when the trace builds the sconv group's own slots)
    assert rule(seq_idx, meta, "seq_idx_ptr", spec) == InitSpec("values", ([0, 0, 0, 1, 1, 1],))
    assert rule(starts, meta, "query_start_ptr", spec) == InitSpec("values", ([0, 0, 0, 3, 3, 3],))


def _i8(base: str, shape: tuple[int, int], producer: str) -> TensorArg:
    return TensorArg("int8", shape, (shape[1], 1), 0, 1, base, shape[0] * shape[1], producer)


def test_an_int8_quant_result_is_any_int8_value():
    """scaled_quant.cu saturates into int8's range: the quantized activation an int8 GEMM reads (compressed-tensors'
    Triton scaled_mm_kernel under --linear-backend triton) is data, every int8 value."""
    x = TensorArg("bfloat16", (64, 4096), (4096, 1), 0, 2, "s0", 64 * 4096 * 2, "event:0")
    quant = TracedEvent(1, "op", "_C::dynamic_scaled_int8_quant", 0, None,
                        (("result", _i8("s1", (64, 4096), "alloc")), ("input", x),
                         ("scale", TensorArg("float32", (64, 1), (1, 1), 0, 4, "s2", 256, "alloc")), ("azp", None)))
    reader = TracedEvent(2, "triton", "vllm.model_executor.layers.quantization.compressed_tensors.triton_scaled_mm:"
                         "scaled_mm_kernel", 0, None, (("a_ptr", _i8("s1", (64, 4096), "event:1")),))
    got = init_for("a_ptr", _i8("s1", (64, 4096), "event:1"), reader, _facts(quant, reader))
    assert got == InitSpec("randint", (-128, 128))


def test_another_ops_int8_output_still_has_no_rule():
    import pytest

    from vkc.invoke.triton.modeltraced.initbase import Refused
    other = TracedEvent(1, "op", "_C::some_int8_op", 0, None, (("result", _i8("s1", (4, 8), "alloc")),))
    reader = TracedEvent(2, "triton", "m:k", 0, None, (("a_ptr", _i8("s1", (4, 8), "event:1")),))
    with pytest.raises(Refused, match="no contents rule"):
        init_for("a_ptr", _i8("s1", (4, 8), "event:1"), reader, _facts(other, reader))
