"""Step5's sparse-indexer metadata rules (:mod:`vkc.invoke.triton.modeltraced.produced_step5`) and integer
views of floating data (:func:`vkc.invoke.triton.modeltraced.initbase.float_bits`)."""
from __future__ import annotations

import pytest

from vkc.invoke.triton.modeltraced.initbase import Refused
from vkc.invoke.triton.modeltraced.inits import StepFacts, init_for
from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import ScalarArg, StepSpec, StepTrace, TensorArg, TracedEvent

OPS = "vllm.models.step5.nvidia.ops."


def _t(base: str, shape: tuple[int, ...], producer: str, dtype: str = "int64", offset: int = 0) -> TensorArg:
    n = 1
    for d in shape:
        n *= d
    size = {"int64": 8, "int32": 4, "bool": 1, "int16": 2, "bfloat16": 2}[dtype]
    stride = (shape[1], 1) if len(shape) == 2 else (1,)
    return TensorArg(dtype, shape, stride, offset, size, base, size * n, producer)


def _direct(rows: int, groups: int) -> TracedEvent:
    return TracedEvent(0, "triton", OPS + "sparse_indexer_scores:_direct_scores", None, None,
                       (("SeqLens", _t("s0", (2,), "metadata:seq_lens", "int32")),
                        ("Active", _t("s1", (rows,), "alloc", "bool")), ("Positions", _t("s2", (rows,), "alloc")),
                        ("Current", _t("s3", (rows,), "alloc")), ("Lengths", _t("s4", (rows,), "alloc", "int32"))),
                       constexprs={"QUERY_LEN": 1, "ROW_GROUPS": groups})


def _facts(spec: StepSpec, *events: TracedEvent, known: dict[str, Contents] | None = None) -> StepFacts:
    return StepFacts(StepTrace(spec, 2, events, 0.0), 64, 16, known=known or {})


def test_direct_scores_rows_are_each_tokens_last_position_and_region():
    spec = StepSpec("decode", 2, 20)                  # 2 requests of 20 tokens: position 19, region 2
    direct = _direct(4, 2)
    reader = TracedEvent(1, "triton", OPS + "x:y", None, None,
                         (("Positions", _t("s2", (4,), "event:0")), ("Current", _t("s3", (4,), "event:0")),
                          ("Active", _t("s1", (4,), "event:0", "bool"))))
    facts = _facts(spec, direct, reader)
    assert init_for("Positions", _t("s2", (4,), "event:0"), reader, facts) == InitSpec("values", ([19] * 4,))
    assert init_for("Current", _t("s3", (4,), "event:0"), reader, facts) == InitSpec("values", ([2] * 4,))
    assert init_for("Active", _t("s1", (4,), "event:0", "bool"), reader, facts) == InitSpec("values", ([1] * 4,))


def test_all_regions_lists_every_region_up_to_the_current_one():
    spec = StepSpec("decode", 2, 20)
    direct = _direct(4, 2)
    regions = TracedEvent(1, "triton", OPS + "sparse_indexer:_all_regions", None, None,
                          (("Current", _t("s3", (4,), "event:0")), ("Output", _t("s5", (4, 4), "alloc"))),
                          constexprs={"K": 3, "BLOCK": 4})
    reader = TracedEvent(2, "triton", OPS + "sparse_decode_attention:_sparse_decode_split", None, None,
                         (("Regions", _t("s5", (4, 4), "event:1")),))
    got = init_for("Regions", _t("s5", (4, 4), "event:1"), reader, _facts(spec, direct, regions, reader))
    assert got == InitSpec("region_rows", (4, [2], [4]))     # each row: -1, 0, 1, 2


def test_prepare_prefill_indexer_regions_follow_the_host_positions():
    spec = StepSpec("prefill", 1, 0, 16)
    pos = _t("p", (16,), "host:h2d")
    prep = TracedEvent(0, "triton", OPS + "prefill_indexer_metadata:_prepare_prefill_indexer", None, None,
                       (("Positions", pos), ("Selected", _t("s6", (16, 3), "alloc")), ("ROWS", ScalarArg(16)),
                        ("REGIONS", ScalarArg(2))),
                       constexprs={"NEED_SCORES": False, "POSITION_STRIDE": 1})
    reader = TracedEvent(1, "triton", OPS + "sparse_prefill_pages:_compact_prefill_pages", None, None,
                         (("Regions", _t("s6", (16, 3), "event:0")),))
    facts = _facts(spec, prep, reader, known={"p": Contents.of(list(range(16)))})
    got = init_for("Regions", _t("s6", (16, 3), "event:0"), reader, facts)
    assert got == InitSpec("region_rows", (3, [0, 1], [8, 8]))
    # with NEED_SCORES the top-k fills Selected, not this kernel: refused with the reason
    scored = TracedEvent(0, "triton", prep.name, None, None, prep.args, constexprs={"NEED_SCORES": True,
                                                                                    "POSITION_STRIDE": 1})
    with pytest.raises(Refused):
        init_for("Regions", _t("s6", (16, 3), "event:0"), reader, _facts(spec, scored, reader, known=facts.known))


def test_an_int16_view_of_bf16_rows_is_float_data():
    spec = StepSpec("prefill", 1, 0, 16)
    op = TracedEvent(0, "op", "_C::fused_qknorm_rope_cache", None, None, (("q", _t("q", (16, 8), "alloc", "bfloat16")),))
    reader = TracedEvent(1, "triton", OPS + "sparse_prefill_pages:_compact_prefill_pages", None, None,
                         (("Query", _t("q", (16, 8), "event:0", "int16")),))
    got = init_for("Query", _t("q", (16, 8), "event:0", "int16"), reader, _facts(spec, op, reader))
    assert got == InitSpec("randn_as", ("bfloat16",))


def _template_init():
    import math
    from pathlib import Path

    import torch

    text = (Path(__file__).parents[2] / "src/vkc/invoke/triton/templates/invoke.py.j2").read_text()
    body = text[text.index("def _init_tensor("):text.index("def _view(")]
    ns: dict[str, object] = {"torch": torch, "math": math, "_POINTER_TARGETS": []}
    exec(body, ns)   # noqa: S102 -- the template's own helper, no Jinja expressions inside it
    return ns["_init_tensor"]


def test_the_examples_region_rows_and_float_bits():
    import torch

    init = _template_init()
    t = init([3, 4], "int64", ("region_rows", 4, [2, 0], [1, 1]), "cpu")   # type: ignore[operator]
    assert t.tolist() == [[-1, 0, 1, 2], [-1, -1, -1, 0], [-1, -1, -1, -1]]
    q = init([8, 4], "int16", ("randn_as", "bfloat16"), "cpu")              # type: ignore[operator]
    assert q.dtype == torch.int16 and bool(torch.isfinite(q.view(torch.bfloat16)).all())
    b = init([6], "uint8", ("randn_as", "bfloat16"), "cpu")                 # another width: the bytes of 3 values
    assert b.dtype == torch.uint8 and b.shape == (6,) and bool(torch.isfinite(b.view(torch.bfloat16)).all())
    assert init([4], "uint8", ("randn",), "cpu").min() >= 0                  # type: ignore[operator]


def test_gathered_block_table_entries_are_block_ids():
    spec = StepSpec("prefill", 1, 0, 16)
    pages = _t("pg", (3,), "gathered:metadata:block_table_tensor", "int32")
    reader = TracedEvent(0, "triton", OPS + "sparse_prefill_pages:_stage_prefill_pages", None, None, (("Pages", pages),))
    assert init_for("Pages", pages, reader, _facts(spec, reader)) == InitSpec("block_table", (64,))


def test_ring_metadata_keeps_the_last_capacity_positions_of_each_request():
    spec = StepSpec("prefill", 2, 0, 4)                 # 2 prompts of 4 tokens, a ring of 2 rows per request
    ring = TracedEvent(0, "triton", "vllm.models.step5.nvidia.csa_tail_ring:_ring_metadata_kernel", None, None,
                       (("base_ptr", _t("b", (10,), "alloc")), ("slot_mapping_ptr", _t("sl", (10,), "alloc")),
                        ("num_reqs", ScalarArg(2)), ("num_actual_tokens", ScalarArg(8)), ("num_tokens", ScalarArg(8))),
                       constexprs={"CAPACITY": 2, "ROWS_PER_BLOCK": 10})
    reader = TracedEvent(1, "triton", OPS + "summary_update:_write_ring", None, None,
                         (("RingSlots", _t("sl", (8,), "event:0")),))
    got = init_for("RingSlots", _t("sl", (8,), "event:0"), reader, _facts(spec, ring, reader))
    # request 0 in block 1 (rows 10..), request 1 in block 2 (rows 20..): positions 2, 3 kept at pos % 2
    assert got == InitSpec("values", ([-1, -1, 10, 11, -1, -1, 20, 21, -1, -1],))


def test_a_cut_kv_storage_keeps_every_views_rows_inside_its_blocks():
    """Step5's ring: [rows, 512] bf16 rows over the KV storage, 240 rows per block of 245760 bytes."""
    from vkc.invoke.triton.modeltraced.build import _shrunk

    cache = TensorArg("bfloat16", (100, 8, 16, 384), (49152, 6144, 384, 1), 0, 2, "kv", 100 * 98304, "kv_cache:l0")
    ring = TensorArg("bfloat16", (24000, 512), (512, 1), 0, 2, "kv", 100 * 98304, "kv_cache:l0")
    mean = TensorArg("uint8", (100, 2, 256), (98304, 256, 1), 1024, 1, "kv", 100 * 98304, "kv_cache:l0")
    assert _shrunk(cache, 10, 98304).shape[0] == 10
    assert _shrunk(ring, 10, 98304).shape[0] == 10 * 98304 // 1024      # 96 ring rows per block
    assert _shrunk(mean, 10, 98304).shape[0] == 10                       # an offset view keeps its last block
    assert _shrunk(cache, 10).shape[0] == 10                             # no block bytes: the block dimension
