"""Packed KV-cache sources (TurboQuant / UltraQuant): their ids, trace options and REACH_SOURCES block, and the
flat 1-D cache view UltraQuant's kernels take (the model-traced cut and the GB/s bytes); no vLLM run."""
from __future__ import annotations

import pytest

from vkc.batch.reach import REACH_SOURCES
from vkc.errors import ModelError
from vkc.invoke.traced_bytes import touched_bytes
from vkc.invoke.triton.modeltraced.build import _shrunk, kv_block_bytes, kv_blocks
from vkc.modelcfg.variants import SERVING_KEYS, parse_variant
from vkc.modeltrace.records import StepSpec, StepTrace, TensorArg, TracedEvent, TraceOptions
from vkc.modeltrace.variants import serving_variant

QNEXT = "Qwen/Qwen3-Next-80B-A3B-Instruct"
PACKED = (f"{QNEXT}@kv-cache-dtype=turboquant_k8v4,attention-backend=TURBOQUANT",
          f"{QNEXT}@kv-cache-dtype=turboquant_4bit_nc,attention-backend=TURBOQUANT",
          f"{QNEXT}@kv-cache-dtype=ultraquant_4bit,attention-backend=ULTRAQUANT")


def test_packed_sources_are_one_block_in_reach_sources():
    i = REACH_SOURCES.index(PACKED[0])
    assert REACH_SOURCES[i:i + len(PACKED)] == PACKED


@pytest.mark.parametrize("model", PACKED)
def test_packed_source_sets_the_cache_dtype_and_its_backend(model):
    v = parse_variant(model)
    assert v is not None and v.base == QNEXT
    out = serving_variant(TraceOptions((StepSpec("decode", 64, ctx=4096),)), model)
    assert out.kv_cache_dtype == v.option("kv-cache-dtype")
    assert out.attention_backend == v.option("attention-backend")


def test_blackwell_and_flashinfer_only_dtypes_are_not_values():
    for dtype in ("nvfp4", "nvfp4_4over6", "nvfp4_ds_mla"):
        assert dtype not in SERVING_KEYS["kv-cache-dtype"]
        with pytest.raises(ModelError):
            parse_variant(f"{QNEXT}@kv-cache-dtype={dtype}")


NB, BS, BLOCK_BYTES = 1000, 64, 64 * 544         # blocks, block size, bytes per block (544 B per token)


def _arg(shape, stride, itemsize=1, dtype="uint8"):
    n = NB * BLOCK_BYTES // itemsize
    return TensorArg(dtype, shape, stride, 0, itemsize, "s1", n * itemsize, "kv_cache:model.layers.0.linear_attn")


FLAT = _arg((NB * BLOCK_BYTES,), (1,))
STATE = _arg((NB, 8192, 3), (BLOCK_BYTES // 2, 1, 8192), itemsize=2, dtype="bfloat16")   # a Mamba view of the storage


def _step(*views):
    ev = TracedEvent(0, "triton", "m:k", 3, None, tuple((f"p{i}", v) for i, v in enumerate(views)))
    return StepTrace(StepSpec("decode", 4, ctx=256), 4, (ev,), 0.0)


def test_a_flat_view_has_no_block_dimension():
    assert kv_blocks(_step(FLAT, STATE)) == NB
    assert kv_blocks(_step(FLAT)) is None
    assert kv_block_bytes(_step(FLAT, STATE)) == {"s1": BLOCK_BYTES}


def test_the_cut_keeps_whole_blocks_of_a_flat_view():
    cut = _shrunk(FLAT, 17, BLOCK_BYTES)
    assert cut.shape == (17 * BLOCK_BYTES,) and cut.base_nbytes == 17 * BLOCK_BYTES
    assert _shrunk(FLAT, 17, None) is FLAT           # no other view says the block's bytes: kept whole
    assert _shrunk(STATE, 17).shape == (17, 8192, 3)


def test_flat_cache_bytes_per_token():
    spec = StepSpec("decode", 4, ctx=256)
    ev = TracedEvent(0, "triton", "m:k", 3, None, ())
    table = TensorArg("int32", (4, 4), (4, 1), 0, 4, "s2", 64, "metadata:block_table_tensor")
    got, rule = touched_bytes(ev, [("KV_cache_ptr", FLAT), ("block_tables_ptr", table)], spec, num_blocks=NB,
                              block_size=BS)
    assert "KV_cache_ptr 544 B/token" in rule
    assert got == 4 * 256 * 544 + 4 * 4 * 4
