"""Contents the model-traced path derives instead of refusing: integer KV caches (data, any value of the
dtype; float scales packed beside them get a positive constant), the results of element-selecting aten
ops over a one-valued source (sampled token ids gathered from an earlier argmax), top-k indices."""
from __future__ import annotations

import pytest

from vkc.invoke.triton.modeltraced.build import PACKED_SCALE, _pick_init
from vkc.invoke.triton.modeltraced.inits import Refused, StepFacts, init_for
from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import ScalarArg, StepSpec, StepTrace, TensorArg, TracedEvent

MOD = "vllm.v1.worker.gpu.sample.logprob:"


def _t(base: str, dtype: str = "int64", shape: tuple[int, ...] = (64,), producer: str = "alloc",
       origin: str = "") -> TensorArg:
    n = 1
    for d in shape:
        n *= d
    item = {"int64": 8, "int32": 4, "float32": 4, "int8": 1, "uint8": 1, "bfloat16": 2}[dtype]
    stride = tuple(int(x) for x in ([1] if len(shape) == 1 else [shape[1], 1])) if shape else ()
    return TensorArg(dtype, shape, stride, 0, item, base, max(n, 1) * item, producer, origin or producer)


def _facts(*events: TracedEvent, kv: frozenset[str] = frozenset()) -> StepFacts:
    return StepFacts(StepTrace(StepSpec("decode", 64, 4096), 64, events, 0.0), 1024, 16, kv_bases=kv)


def test_an_integer_kv_cache_is_data_over_the_dtype_range():
    cache = _t("kv", "int8", (1024, 16), producer="event:0", origin="kv_cache:layers.0.attn")
    writer = TracedEvent(0, "triton", "m:_reshape_cache_int4_kernel", None, None, (("key_cache_ptr", cache),))
    user = TracedEvent(1, "triton", "m:_attn_packed", None, None, (("key_cache_ptr", cache),))
    facts = _facts(writer, user, kv=frozenset({"kv"}))
    assert init_for("key_cache_ptr", cache, user, facts) == InitSpec("randint", (-128, 128))
    u8 = _t("kv", "uint8", (1024, 16), producer="event:0", origin="kv_cache:layers.0.attn")
    assert init_for("key_cache_ptr", u8, user, facts) == InitSpec("randint", (0, 256))


def test_scales_packed_in_an_integer_kv_cache_get_a_positive_constant():
    k = _t("kv", "int8", (1024, 16))
    s = TensorArg("float32", (1024, 4), (4, 1), 31, 4, "kv", 1024 * 16, "alloc")
    ints = InitSpec("randint", (-128, 128))
    got = _pick_init([("key_cache_ptr", k, ints), ("k_scale_cache_ptr", s, InitSpec("randn"))], kv=True)
    assert got == InitSpec("overlay", (ints.to_literal(), [[[1024, 4], [4, 1], 31, "float32", PACKED_SCALE]]))
    with pytest.raises(Refused, match="views of one index buffer"):        # not a KV cache: refused as before
        _pick_init([("key_cache_ptr", k, ints), ("k_scale_cache_ptr", s, InitSpec("randn"))])
    # a float view that is no scale: the cache's float rows, whose bytes the integer view reads as data (a KV
    # cache holds no indices; random bytes are as valid as the every-value fill of an integer cache)
    assert _pick_init([("key_cache_ptr", k, ints), ("other_ptr", s, InitSpec("randn"))], kv=True) == InitSpec(
        "randn_as", ("float32",))


def test_a_gather_of_an_earlier_argmax_is_a_token_id_and_topk_indices_are_distinct_ids():
    local = _t("la", "int64", (64, 126))
    sample = TracedEvent(0, "triton", "vllm.v1.worker.gpu.sample.gumbel:_gumbel_sample_kernel", None, None,
                         (("local_argmax_ptr", local),))
    best = _t("am", "int64", (64, 1), producer="event:1")
    argmax = TracedEvent(1, "aten", "aten::argmax", None, None,
                         (("self", _t("lm", "float32", (64, 126), producer="event:0")),), outputs=(best,))
    gsrc = TensorArg("int64", (64, 126), (126, 1), 0, 8, "la", 64 * 126 * 8, "event:0")
    out = _t("g", "int64", (64, 1), producer="event:2")
    gather = TracedEvent(2, "aten", "aten::gather", None, None,
                         (("self", gsrc), ("dim", ScalarArg(-1)), ("index", best)), outputs=(out,))
    logits = _t("lg", "bfloat16", (64, 1000))
    vals, idx = _t("tv", "bfloat16", (64, 5), producer="event:3"), _t("ti", "int64", (64, 5), producer="event:3")
    topk = TracedEvent(3, "aten", "aten::topk", None, None, (("self", logits), ("k", ScalarArg(5))),
                       outputs=(vals, idx))
    idx32 = _t("ti32", "int32", (64, 5), producer="event:4")
    copy = TracedEvent(4, "aten", "aten::_to_copy", None, None, (("self", idx),), outputs=(idx32,))
    sampled = _t("g", "int64", (64,), producer="event:2")
    fill = TracedEvent(5, "triton", MOD + "_fill_logprob_token_ids_kernel", None, None,
                       (("sampled_token_ids_ptr", sampled), ("topk_indices_ptr", idx32)))
    facts = _facts(sample, argmax, gather, topk, copy, fill)
    assert init_for("sampled_token_ids_ptr", sampled, fill, facts) == InitSpec("const", (0,))
    got = init_for("topk_indices_ptr", idx32, fill, facts)
    assert got.kind == "values"
    flat = got.params[0]
    rows = [flat[i * 5:(i + 1) * 5] for i in range(64)]
    assert all(len(set(r)) == 5 and all(0 <= x < 1000 for x in r) for r in rows)


def test_a_where_with_an_unrecorded_pad_takes_self_and_says_so():
    ids = _t("ids", "int32", (64, 4), producer="event:0")
    src = TracedEvent(0, "triton", "m:_writer_kernel", None, None, (("out_argmax_ptr", _t("ids", "int32", (64, 4))),))
    cond = _t("c", "int8", (64, 4))
    pad = TensorArg("int32", (), (), 0, 4, "pad", 4, "alloc")
    out = _t("w", "int32", (64, 4), producer="event:1")
    where = TracedEvent(1, "aten", "aten::where", None, None, (("condition", cond), ("self", ids), ("other", pad)),
                        outputs=(out,))
    user = TracedEvent(2, "triton", "m:_repeated_context_mask_kernel", None, None, (("contexts_ptr", out),))
    facts = _facts(src, where, user)
    assert init_for("contexts_ptr", out, user, facts) == InitSpec("const", (0,))
    assert any("taken as self throughout" in n for n in facts.notes)
    recorded = TensorArg("int32", (64, 4), (4, 1), 0, 4, "o2", 1024, "event:0")   # a real tensor: no rule
    where2 = TracedEvent(1, "aten", "aten::where", None, None,
                         (("condition", cond), ("self", ids), ("other", recorded)), outputs=(out,))
    with pytest.raises(Refused, match="produced by aten::where"):
        init_for("contexts_ptr", out, user, _facts(src, where2, user))


def test_the_steps_token_ids_are_ids_of_the_embedding_table_the_step_reads():
    """DeepSeek-V4's hash router reads input_ids (a table look-up) without the embedding table among its own
    arguments: the ids are bounded by the step's embedding table."""
    ids = _t("ids", "int32", (64,), producer="input:input_ids")
    table = TensorArg("bfloat16", (129280, 4096), (4096, 1), 0, 2, "emb", 129280 * 4096 * 2,
                      "weight:model.embed_tokens.weight")
    embed = TracedEvent(0, "aten", "aten::embedding", None, None, (("weight", table), ("indices", ids)))
    user = TracedEvent(1, "triton", "vllm.model_executor.layers.fused_moe.router.dsv4_topk:_dsv4_topk_kernel", None,
                       None, (("input_ids_ptr", ids),))
    assert init_for("input_ids_ptr", ids, user, _facts(embed, user)) == InitSpec("randint", (0, 129280))


def test_a_view_inside_a_range_filled_with_one_value_holds_it_and_one_outside_is_refused():
    """DeepSeek-V4's combined top-k indices are torch.full/fill_(-1) before the kernel writes them."""
    buf = _t("idx", "int32", (64, 8), producer="event:0")
    fill = TracedEvent(0, "aten", "aten::fill_", None, None, (("self", buf), ("value", ScalarArg(-1))))
    user = TracedEvent(1, "triton", "m:CombineTopkSwaIndicesKernel.kernel", None, None, (("combined_indices_ptr", buf),))
    assert init_for("combined_indices_ptr", buf, user, _facts(fill, user)) == InitSpec("const", (-1,))
    zero = TracedEvent(0, "aten", "aten::zero_", None, None, (("self", buf),))
    assert init_for("combined_indices_ptr", buf, user, _facts(zero, user)) == InitSpec("const", (0,))
    half = TensorArg("int32", (32, 8), (8, 1), 0, 4, "idx", buf.base_nbytes, "event:0", "event:0")
    part = TracedEvent(0, "aten", "aten::fill_", None, None, (("self", half), ("value", ScalarArg(-1))))
    with pytest.raises(Refused):                      # the fill misses half of what the kernel reads
        init_for("combined_indices_ptr", buf, user, _facts(part, user))
    tail = TensorArg("int32", (16, 8), (8, 1), 40 * 8, 4, "idx", buf.base_nbytes, "event:0", "event:0")
    slot = TracedEvent(1, "triton", "m:CombineTopkSwaIndicesKernel.kernel", None, None, (("combined_indices_ptr", tail),))
    with pytest.raises(Refused):                      # a workspace slice past the filled range
        init_for("combined_indices_ptr", tail, slot, _facts(part, slot))
    assert init_for("combined_indices_ptr", tail, slot, _facts(fill, slot)) == InitSpec("const", (-1,))
