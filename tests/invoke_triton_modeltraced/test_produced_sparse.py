"""Contents the sparse-attention metadata kernels of MiniMax-M3, Qwen4-Exp (QSA) and Glm5Next leave
(:mod:`vkc.invoke.triton.modeltraced.produced_topk`, ``produced_qsa``, ``produced_slots``), the
``topk_rows`` kind's forced blocks, and the write-only analysis of ``p.dtype`` and scalar strides."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from vkc.invoke.triton.modeltraced.build import _init_or_unread
from vkc.invoke.triton.modeltraced.inits import Refused, StepFacts, init_for
from vkc.invoke.triton.modeltraced.writeonly import write_only_params
from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import ScalarArg, StepSpec, StepTrace, TensorArg, TracedEvent

TOPK = "vllm.models.minimax_m3.common.ops.index_topk:"


def _t(base: str, shape: tuple[int, ...], producer: str, stride: tuple[int, ...] | None = None,
       dtype: str = "int32", nbytes: int | None = None) -> TensorArg:
    if stride is None:
        stride = tuple(math.prod(shape[i + 1:]) for i in range(len(shape)))
    item = 8 if dtype == "int64" else 4
    return TensorArg(dtype, shape, stride, 0, item, base, nbytes or item * math.prod(shape), producer)


def _ev(i: int, name: str, *args: tuple[str, object], grid: tuple[int, ...] | None = None,
        constexprs: dict[str, object] | None = None) -> TracedEvent:
    return TracedEvent(i, "triton", name, None, None, tuple(args), grid=grid, constexprs=constexprs or {})


def _facts(spec: StepSpec, *events: TracedEvent, num_blocks: int = 64) -> StepFacts:
    return StepFacts(StepTrace(spec, spec.batch, events, 0.0), num_blocks, 16)


def _read(param: str, a: TensorArg, facts: StepFacts) -> InitSpec:
    reader = facts.step.events[-1]
    return init_for(param, a, reader, facts)


def _decode_topk(ctx: int) -> tuple[StepFacts, TensorArg]:
    """score (local_blocks 1) -> partial (2 chunks of 2 blocks) -> merge into a token-major [H=2, B=2, 4] table."""
    spec = StepSpec("decode", 2, ctx)
    seq = _t("sl", (2,), "metadata:seq_lens")
    score = _ev(0, TOPK + "_decode_index_score_kernel", ("score_ptr", _t("s", (2, 2, 4), "alloc", dtype="float32")),
                ("init_blocks", ScalarArg(0)), ("local_blocks", ScalarArg(1)))
    part_t = _t("p", (2, 2, 2, 4), "alloc")
    part = _ev(1, TOPK + "_topk_index_partial_kernel", ("s_ptr", _t("s", (2, 2, 4), "event:0", dtype="float32")),
               ("ti_partial_ptr", part_t), ("seq_lens", seq), ("chunk_blocks", ScalarArg(2)),
               ("decode_query_len", ScalarArg(1)), grid=(2, 2, 2), constexprs={"block_size": 128, "topk": 4})
    final = _t("f", (2, 2, 4), "unknown", stride=(4, 8, 1), nbytes=4 * 64)
    merge = _ev(2, TOPK + "_topk_index_merge_kernel", ("ti_partial_ptr", _t("p", (2, 2, 2, 4), "event:1")),
                ("ti_final_ptr", final), ("seq_lens", seq), ("decode_query_len", ScalarArg(1)), grid=(2, 2),
                constexprs={"block_size": 128, "topk": 4})
    reader = _ev(3, "vllm.models.minimax_m3.common.ops.sparse_attn:_gqa_sparse_decode_kernel",
                 ("t_ptr", _t("f", (2, 2, 4), "event:2", stride=(4, 8, 1), nbytes=4 * 64)))
    return _facts(spec, score, part, merge, reader), reader.args[0][1]  # type: ignore[return-value]


def test_minimax_decode_topk_rows_are_each_tokens_valid_blocks_the_local_one_first():
    facts, t = _decode_topk(ctx=300)          # 300 tokens: cdiv(300, 128) = 3 blocks, the last forced in
    got = _read("t_ptr", t, facts)
    # token-major storage: row = token * 2 + head; 4 rows, then nothing past the view
    assert got == InitSpec("topk_rows", (4, [[3, 0, 1]] * 4, 4))


def test_minimax_partial_rows_hold_each_chunks_blocks_one_indexed_then_zero():
    facts, _unused = _decode_topk(ctx=300)
    part = facts.step.events[1]
    got = init_for("ti_partial_ptr", _t("p", (2, 2, 2, 4), "event:1"), facts.step.events[2], facts)
    vals = got.params[0]
    assert got.kind == "values" and len(vals) == 32
    row = lambda c, h, b: vals[c * 16 + h * 8 + b * 4: c * 16 + h * 8 + b * 4 + 4]
    # chunk 0 owns blocks 0, 1 (ids 1, 2, any order); chunk 1 owns block 2 only (the local one: id 3)
    assert sorted(row(0, 1, 0)[:2]) == [1, 2] and row(0, 1, 0)[2:] == [0, 0]
    assert row(1, 0, 1) == [3, 0, 0, 0]
    assert part.name.endswith("_topk_index_partial_kernel")


def test_minimax_prefill_topk_rows_follow_each_querys_causal_blocks():
    spec = StepSpec("prefill", 1, prompt_len=3)
    ti = _t("ti", (1, 3, 2), "unknown")
    topk = _ev(0, TOPK + "_topk_index_kernel", ("ti_ptr", ti), grid=(3, 1, 1),
               constexprs={"block_size": 2, "sample_interval": 1, "init_blocks": 1, "local_blocks": 0})
    reader = _ev(1, "m:reader", ("t_ptr", _t("ti", (1, 3, 2), "event:0")))
    got = _read("t_ptr", reader.args[0][1], _facts(spec, topk, reader))   # type: ignore[arg-type]
    # query i sees (i + 2) // 2 blocks; block 0 (init) forced first
    assert got == InitSpec("topk_rows", (2, [[1, 1, 0], [1, 1, 0], [2, 1, 0]], 2))


QSA = "vllm.models.qwen4_exp.common.qsa_cache:_build_qsa_metadata_kernel"


def _qsa(circular: int, ratio: int, sbs: int = 4) -> StepFacts:
    spec = StepSpec("prefill", 2, prompt_len=4)
    outs = [(n, _t(f"o{n}", (8,), "unknown", dtype=d)) for n, d in
            (("token_to_req_ptr", "int32"), ("logical_positions_ptr", "int64"), ("visible_blocks_ptr", "int32"),
             ("slot_mapping_ptr", "int64"))]
    ev = _ev(0, QSA, *outs, ("k_work_metadata_ptr", _t("ow", (3, 2), "unknown")),
             ("block_table_ptr", _t("bt", (2, 2), "metadata:block_table_tensor")), ("num_reqs", ScalarArg(2)),
             ("num_mapped_tokens", ScalarArg(7)), ("num_tokens", ScalarArg(8)), ("max_num_work", ScalarArg(3)),
             constexprs={"storage_block_size": sbs, "compress_ratio": ratio, "circular_buffer_size": circular,
                         "num_block_table_columns": 2})
    reader = _ev(1, "m:reader", *[(n, _t(t.base, t.shape, "event:0", dtype=t.dtype)) for n, t in outs])
    return _facts(spec, ev, reader, num_blocks=8)


def _qsa_read(facts: StepFacts, param: str) -> list[object]:
    a = dict(facts.step.events[-1].tensors()).get(param) or _t("ow", (3, 2), "event:0")
    got = init_for(param, a, facts.step.events[-1], facts)
    assert got.kind == "values"
    return list(got.params[0])   # type: ignore[arg-type]


def test_qsa_metadata_maps_tokens_positions_and_visible_blocks():
    facts = _qsa(circular=0, ratio=2)
    assert _qsa_read(facts, "token_to_req_ptr") == [0, 0, 0, 0, 1, 1, 1, 0]     # 7 mapped of 8
    assert _qsa_read(facts, "logical_positions_ptr") == [0, 1, 2, 3, 0, 1, 2, -1]
    assert _qsa_read(facts, "visible_blocks_ptr") == [0, 1, 1, 2, 0, 1, 1, 0]


def test_qsa_compressed_slots_every_ratio_th_token_inside_the_cache():
    facts = _qsa(circular=0, ratio=2, sbs=4)
    slots = _qsa_read(facts, "slot_mapping_ptr")
    # (lp + 1) % 2 == 0 tokens store compressed position lp // 2 of the request's first block
    assert [s == -1 for s in slots] == [True, False, True, False, True, False, True, True]
    assert slots[1] % 4 == 0 and slots[3] == slots[1] + 1 and 4 <= slots[1] < 8 * 4
    assert slots[5] // 4 != slots[1] // 4                                     # another request, another block


def test_qsa_circular_slots_and_work_items():
    facts = _qsa(circular=2, ratio=2)
    slots = _qsa_read(facts, "slot_mapping_ptr")
    # each request's last 2 tokens sit in its ring at lp % 2; the unmapped 8th token -1
    assert slots[:2] == [-1, -1] and slots[2] % 2 == 0 and slots[3] == slots[2] + 1 and slots[7] == -1
    # request 0: 4 tokens from 0 -> 2 groups; request 1: 3 -> 1 group, capped at max_num_work 3
    assert _qsa_read(facts, "k_work_metadata_ptr") == [0, 0, 0, 1, 1, 0]


def test_mla_compressed_and_kpool_tail_slot_mappings():
    spec = StepSpec("decode", 2, 32)
    comp = _ev(0, "vllm.v1.attention.backends.mla.compressor_utils:CompressedSlotMappingKernel.kernel",
               ("compressed_slot_mapping_ptr", _t("c", (2,), "unknown", dtype="int64")),
               ("block_size", ScalarArg(4)), ("dcp_world_size", ScalarArg(1)),
               constexprs={"COMPRESS_RATIO": 4, "PAD_ID": -1})
    tail = _ev(1, "vllm.v1.attention.backends.mla.indexer:_kpool_tail_slot_mapping_kernel",
               ("out_ptr", _t("k", (2,), "unknown", dtype="int64")), ("num_actual_tokens", ScalarArg(2)),
               ("num_tokens", ScalarArg(2)), ("kpool", ScalarArg(16)))
    reader = _ev(2, "m:reader", ("slot_mapping_ptr", _t("c", (2,), "event:0", dtype="int64")),
                 ("tail_slot_mapping_ptr", _t("k", (2,), "event:1", dtype="int64")))
    facts = _facts(spec, comp, tail, reader, num_blocks=8)
    # position 31: (31 + 1) % 4 == 0, compressed position 7 = block 1 of 4, offset 3
    c = init_for("slot_mapping_ptr", reader.args[0][1], reader, facts)        # type: ignore[arg-type]
    assert c.kind == "values" and [v % 4 for v in c.params[0]] == [3, 3]      # type: ignore[union-attr]
    assert len({v // 4 for v in c.params[0]}) == 2                             # type: ignore[union-attr]
    k = init_for("tail_slot_mapping_ptr", reader.args[1][1], reader, facts)    # type: ignore[arg-type]
    assert k == InitSpec("values", ([1 * 16 + 15, 2 * 16 + 15],))


def test_a_cast_of_the_positions_keeps_them():
    spec = StepSpec("decode", 2, 32)
    pos = _t("pos", (2,), "input:positions", dtype="int64")
    cast = TracedEvent(0, "aten", "aten::_to_copy", None, None, (("self", pos),), outputs=(_t("p32", (2,), "event:0"),))
    reader = _ev(1, "m:reader", ("positions_ptr", _t("p32", (2, 1), "event:0", stride=(1, 1))))
    got = init_for("positions_ptr", reader.args[0][1], reader, _facts(spec, cast, reader))  # type: ignore[arg-type]
    assert got == InitSpec("values", ([31, 31],))


def test_write_only_ignores_the_pointer_dtype_and_scalar_strides():
    src = ("@triton.jit\ndef k(out_ptr, stride_n, x_ptr):\n    ptrs = out_ptr + tl.program_id(0) * stride_n\n"
           "    tl.store(ptrs, tl.load(x_ptr).to(out_ptr.dtype.element_ty))\n")
    assert write_only_params(src, "k", ["out_ptr", "x_ptr"]) == {"out_ptr"}
    out = _t("o", (4,), "unknown")
    ev = _ev(0, "m:k", ("out_ptr", out), ("stride_n", ScalarArg(1)), ("x_ptr", _t("x", (4,), "alloc")))
    facts = StepFacts(StepTrace(StepSpec("decode", 1, 8), 1, (ev,), 0.0), 8, 16, kernel_source=src)
    assert _init_or_unread("out_ptr", out, ev, facts) == InitSpec("empty")


def test_topk_rows_puts_the_forced_blocks_first():
    text = (Path(__file__).parents[2] / "src/vkc/invoke/triton/templates/invoke.py.j2").read_text()
    body = text[text.index("def _init_tensor("):text.index("def _view(")]
    ns: dict[str, object] = {"torch": torch, "math": math, "_POINTER_TARGETS": []}
    exec(body, ns)   # noqa: S102 -- the template's own helper, no Jinja expressions inside it
    torch.manual_seed(0)
    t = ns["_init_tensor"]([16], "int32", ("topk_rows", 4, [[10, 1, 2], 3, 0, [2, 0, 1]], 4), "cpu")  # type: ignore[operator]
    rows = t.reshape(4, 4).tolist()
    assert rows[0][0] == 0 and sorted(rows[0][1:3]) == [8, 9] and 0 <= rows[0][3] < 10
    assert sorted(rows[1][:3]) == [0, 1, 2] and rows[1][3] == -1
    assert rows[2] == [-1] * 4 and rows[3] == [1, 0, -1, -1]


def test_per_phase_metadata_fields_query_starts_context_and_key_starts():
    spec = StepSpec("prefill", 2, prompt_len=3)
    ev = _ev(0, "m:k", ("cu_seqlens", _t("a", (3,), "metadata:MiniMaxM3SparsePrefillMetadata.cu_seqlens_q")),
             ("prefix_lens", _t("b", (4,), "metadata:MiniMaxM3SparsePrefillMetadata.context_lens")),
             ("cu_k", _t("c", (3,), "metadata:MiniMaxM3SparsePrefillMetadata.cu_seqlens_k")))
    facts = _facts(spec, ev)
    got = [init_for(n, t, ev, facts) for n, t in ev.tensors()]
    assert got == [InitSpec("values", ([0, 3, 6],)), InitSpec("values", ([0, 0, 0, 0],)),
                   InitSpec("values", ([0, 3, 6],))]
    dec = _facts(StepSpec("decode", 2, 5), ev)
    assert init_for("prefix_lens", ev.args[1][1], ev, dec) == InitSpec("values", ([4, 4, 0, 0],))  # type: ignore[arg-type]
    other = _t("d", (2,), "metadata:SomeDecodeMetadata.seq_lens")    # pool-granular, say: no rule
    with pytest.raises(Refused):
        init_for("seq_lens", other, ev, facts)


def test_a_builders_nested_metadata_names_its_new_integer_tensors():
    from dataclasses import dataclass

    from vkc.modeltrace.recorder import RECORDER
    from vkc.modeltrace.worker import _name_nested

    @dataclass
    class Prefill:
        cu_seqlens_q: torch.Tensor
        seq_lens: torch.Tensor
        scale: torch.Tensor

    known = torch.empty(4, dtype=torch.int32, device="meta")
    saved, kept = RECORDER.storages, RECORDER.keep
    RECORDER.storages, RECORDER.keep = {}, []
    try:
        RECORDER.name_storage(known, "metadata:seq_lens")
        m = Prefill(torch.empty(5, dtype=torch.int32, device="meta"), known[1:],
                    torch.empty(2, dtype=torch.float32, device="meta"))
        _name_nested(m)
        producers = {st["producer"] for st in RECORDER.storages.values()}
        # the field's class named; the float one stays unnamed
        assert producers == {"metadata:seq_lens", "metadata:Prefill.cu_seqlens_q"}
    finally:
        RECORDER.storages, RECORDER.keep = saved, kept
