"""Contents of the GDN (linear attention) prefill metadata as vLLM's builders make them."""
from __future__ import annotations

from vkc.invoke.triton.modeltraced.inits import StepFacts, _metadata
from vkc.modeltrace.records import StepSpec, StepTrace, TensorArg


def _t(n: int) -> TensorArg:
    return TensorArg("int32", (n,), (1,), 0, 4, "s1", 4 * n, "metadata:x")


def _facts(spec: StepSpec) -> StepFacts:
    return StepFacts(step=StepTrace(spec, 0, (), 0.0), num_blocks=512, block_size=16)


def test_fla_chunk_tables_and_conv_programs():
    f = _facts(StepSpec("prefill", 2, prompt_len=130))      # 3 chunks of 64, 17 programs of 8 per sequence
    idx = _metadata("chunk_indices", _t(12), f)
    assert list(idx.params[0])[:12] == [0, 0, 0, 1, 0, 2, 1, 0, 1, 1, 1, 2]
    assert list(_metadata("chunk_offsets", _t(3), f).params[0])[:3] == [0, 3, 6]
    batch = list(_metadata("batch_ptr", _t(40), f).params[0])
    assert batch[:17] == [0] * 17 and batch[17:34] == [1] * 17 and set(batch[34:]) <= {-1}
    tok = list(_metadata("token_chunk_offset_ptr", _t(40), f).params[0])
    assert tok[:17] == list(range(17)) and tok[17:34] == list(range(17))
    assert list(_metadata("has_initial_state", _t(2), f).params[0])[:2] == [0, 0]


def test_decode_sequences_have_state():
    f = _facts(StepSpec("decode", 3, ctx=100))
    assert list(_metadata("has_initial_state", _t(3), f).params[0])[:3] == [1, 1, 1]
