"""Mamba2 prefill chunk metadata as vLLM's builder lays it out (mamba_attn.py _compute_chunk_metadata)."""
from __future__ import annotations

from vkc.invoke.triton.modeltraced.mamba_meta import chunk_tables, mamba_chunk_field
from vkc.modeltrace.records import StepSpec, StepTrace, TensorArg, TracedEvent


def test_fresh_prompts_chunk_on_multiples_of_the_chunk_size():
    cu, seq, last = chunk_tables(256, [600, 256], [0, 0])
    assert cu == [0, 256, 512, 600, 856]
    assert seq == [0, 0, 0, 1]
    assert last == [2, 3]


def test_a_partly_computed_sequence_finishes_its_chunk_first():
    # 100 tokens computed: the first chunk takes 156 tokens to reach position 256
    cu, seq, last = chunk_tables(256, [300], [100])
    assert cu == [0, 156, 300] and seq == [0, 0] and last == [1]


def _step(chunks: int, q: int, batch: int) -> StepTrace:
    t = TensorArg("int32", (chunks,), (1,), 0, 4, "s1", 4 * chunks, "metadata:seq_idx_p")
    ev = TracedEvent(0, "triton", "m:_chunk_scan_fwd_kernel", 0, None, (("seq_idx_ptr", t),))
    return StepTrace(StepSpec("prefill", batch, prompt_len=q), q * batch, (ev,), 0.0)


def test_the_chunk_size_comes_from_the_traced_chunk_count():
    step = _step(8, 2048, 4)                    # 4 prompts of 2048 in 8 chunks: chunk size 1024
    assert mamba_chunk_field("cu_chunk_seqlen_p", step, [2048] * 4, [2048] * 4) == [i * 1024 for i in range(9)]
    assert mamba_chunk_field("last_chunk_indices_p", step, [2048] * 4, [2048] * 4) == [1, 3, 5, 7]


def test_sizes_that_agree_are_one_table_and_none_that_fits_is_refused():
    small = _step(2, 64, 2)                     # every chunk size >= 64 gives the same table
    assert mamba_chunk_field("seq_idx_p", small, [64, 64], [64, 64]) == [0, 1]
    odd = _step(3, 64, 2)
    assert "no power-of-two chunk size" in str(mamba_chunk_field("seq_idx_p", odd, [64, 64], [64, 64]))
