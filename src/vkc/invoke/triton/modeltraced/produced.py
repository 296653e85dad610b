"""What an earlier vLLM kernel of the step leaves in a buffer a later launch reads, computed from the step.

The trace records launches, it does not run them; a buffer one of them wrote has the contents that
kernel's code computes from the step's metadata.  Each rule here is one vLLM kernel's output, cited:

* ``vllm/v1/attention/ops/metadata.py: _token_request_mapping_kernel(query_start_loc, output, num_reqs,
  num_mapped, num_tokens)`` -- ``output[t]`` = the request whose query holds token ``t`` for ``t <
  num_mapped``, 0 for ``num_mapped <= t < num_tokens`` (``tl.where(token < num_mapped, req, 0)``); the
  query lengths are the step's (decode: 1 per sequence, prefill: the prompt);
* ``csrc/cooperative_topk.cu: cooperative_topk(logits, lengths, output, workspace, k, max_seq_len)`` and
  ``csrc/topk.cu: persistent_topk`` (the same arguments)
  (``vllm/model_executor/layers/indexer_topk.py``: "writing into topk_indices (int32, -1 fill for rows
  shorter than topk_tokens)") -- each of the ``logits`` rows keeps ``min(k, L)`` distinct positions below
  its length ``L`` (``lengths``: the step's context lengths, one per row, or an earlier kernel's output a
  rule here knows -- QSA's visible compressed blocks), then -1;
* ``vllm/models/deepseek_v32/common/kernels.py: _fused_norm_rope_kernel`` -- with ``HAS_INDEXER`` its
  program 3 fills each token's row of ``topk_indices_ptr`` (``TOPK`` entries) with -1 ("Fill top k
  indices buffer with -1"); without it the program returns and the buffer keeps the previous indexer
  layer's top-k, so no rule;
* ``vllm/models/inkling/nvidia/ops/sconv.py: _seq_metadata_kernel(qsl_ptr, seq_idx_ptr, query_start_ptr,
  num_reqs, num_actual_tokens, num_padded_tokens, ...)`` (launched by ``InklingSconvMetadataBuilder.build``,
  ``sconv_swa_attn.py``) -- for ``t < num_actual_tokens`` ``seq_idx[t]`` = the request ``j`` whose query holds
  token ``t`` (the largest ``j`` with ``qsl[j] <= t``) and ``query_start[t] = qsl[j]``; both 0 for
  ``num_actual_tokens <= t < num_padded_tokens`` (``tl.where(actual, ..., 0)``, stored under ``mask=padded``);
* ``csrc/quantization/w8a8/int8/scaled_quant.cu: {static,dynamic}_scaled_int8_quant(result, input, scale, azp)``
  -- ``result`` holds the input quantized to int8 (``float_to_int8_rn`` / ``int32_to_int8`` saturate into
  ``[numeric_limits<int8_t>::min(), max()]``): any int8 value, ``randint(-128, 128)`` (the int8 GEMM that reads it,
  e.g. compressed-tensors' Triton ``scaled_mm_kernel``, treats it as data, not as indices);
* MiniMax-M3's index top-k tables (:mod:`.produced_topk`), Qwen4-Exp's QSA metadata
  (:mod:`.produced_qsa`), the MLA compressed / kpool-tail slot mappings (:mod:`.produced_slots`) and Step5's
  sparse-indexer metadata (:mod:`.produced_step5`).

:func:`produced_contents` answers None for any other (kernel, parameter): the caller's rules go on.
"""
from __future__ import annotations

from vkc.invoke.triton.plan import InitSpec, Value
from vkc.modeltrace.records import StepSpec, TensorArg, TracedEvent

from .initbase import Refused, StepView, int_scalars, lengths, padded, role_of
from .produced_qsa import qsa_metadata_contents
from .produced_slots import slot_mapping_contents
from .produced_step5 import step5_contents
from .produced_topk import index_topk_contents

__all__ = ["INT8_QUANT_OPS", "TOPK_LENGTH_OPS", "produced_contents"]

# top-k ops over rows of given lengths, one schema (csrc/torch_bindings.cpp: "cooperative_topk(Tensor logits,
# Tensor lengths, Tensor! output, ...)", "persistent_topk(...)" the same; persistent_topk.cuh: a row no
# longer than k is 0..L-1 then -1)
TOPK_LENGTH_OPS = ("_C::cooperative_topk", "_C::persistent_topk")
# int8 quantization ops whose ``result`` is the quantized activation (csrc/torch_bindings.cpp schemas)
INT8_QUANT_OPS = ("_C::static_scaled_int8_quant", "_C::dynamic_scaled_int8_quant")


def _token_requests(a: TensorArg, ev: TracedEvent, spec: StepSpec) -> InitSpec | None:
    q, _ctx = lengths(spec)
    mapped, tokens = int_scalars(ev).get("num_mapped"), int_scalars(ev).get("num_tokens")
    if mapped is None or tokens is None:
        return None
    reqs = [r for r, n in enumerate(q) for _ in range(n)]
    if mapped > len(reqs):
        raise Refused(f"_token_request_mapping_kernel maps {mapped} tokens; the step has {len(reqs)}")
    return padded(reqs[:mapped] + [0] * max(0, tokens - mapped), a, 0)


def _seq_metadata(a: TensorArg, ev: TracedEvent, param: str, spec: StepSpec) -> InitSpec | None:
    sc = int_scalars(ev)
    actual, pad, reqs = sc.get("num_actual_tokens"), sc.get("num_padded_tokens"), sc.get("num_reqs")
    q, _ctx = lengths(spec)
    if actual is None or pad is None or reqs != len(q) or actual != sum(q) or pad < actual:
        return None
    starts = [sum(q[:r]) for r in range(len(q))]
    owner = [r for r, n in enumerate(q) for _ in range(n)]
    values = owner if param == "seq_idx_ptr" else [starts[r] for r in owner]
    return padded(values + [0] * (pad - actual), a, 0)


def _row_lengths(lens: TensorArg, rows: int, facts: StepView) -> list[int] | None:
    """The ``lengths`` of a top-k op, one per row: the step's context lengths (``seq_lens``), or what an
    earlier kernel with a rule here left (QSA's ``visible_blocks``)."""
    if lens.producer == "metadata:seq_lens":
        _q, ctx = lengths(facts.spec)
        return list(ctx) if rows == len(ctx) else None
    src = facts.event(lens.producer)
    got = produced_contents(lens, src, facts) if src is not None and src.kind == "triton" else None
    if got is None or got.kind != "values" or lens.offset != 0 or len(lens.shape) != 1 or lens.shape[0] < rows:
        return None
    values = got.params[0]
    return [int(v) for v in values[:rows]] if isinstance(values, list) else None   # type: ignore[arg-type]


def _topk_rows(a: TensorArg, ev: TracedEvent, facts: StepView) -> InitSpec | None:
    args = dict(ev.args)
    out, lens, k = args.get("output"), args.get("lengths"), int_scalars(ev).get("k")
    if not isinstance(out, TensorArg) or not isinstance(lens, TensorArg) or k is None or len(out.shape) != 2:
        return None
    if out.offset != 0 or out.stride[-1] != 1:
        return None
    lens_rows = _row_lengths(lens, out.shape[0], facts)
    if lens_rows is None:
        return None
    row_lengths: list[Value] = list(lens_rows)
    return InitSpec("topk_rows", (out.stride[0], row_lengths, k))


def produced_contents(a: TensorArg, ev: TracedEvent, facts: StepView) -> InitSpec | None:
    """The contents ``ev`` (the launch that last wrote ``a``'s storage) leaves there, or None."""
    spec = facts.spec
    if ev.kind == "op" and ev.name in TOPK_LENGTH_OPS and role_of(ev, a) == "output":
        return _topk_rows(a, ev, facts)
    if ev.kind == "op" and ev.name in INT8_QUANT_OPS and role_of(ev, a) == "result" and a.dtype == "int8":
        return InitSpec("randint", (-128, 128))
    if ev.kind != "triton":
        return None
    leaf, param = ev.name.rsplit(":", 1)[-1], role_of(ev, a)
    if leaf == "_token_request_mapping_kernel" and param == "output":
        return _token_requests(a, ev, spec)
    if leaf == "_seq_metadata_kernel" and param in ("seq_idx_ptr", "query_start_ptr"):
        # the rule holds, but the launches that read these (Inkling's sconv / qkvr prep) also take the sconv
        # group's slot mapping and block table, which the trace gives as the attention group's (block size 16,
        # not the conv state's 4 tokens per block): an H200 run of them faults (bench/results/
        # gained_h200_2026-12-04.txt), so they stay refused until the trace builds each KV group's own
        raise Refused("Inkling's sconv metadata readers need the sconv KV group's own slot mapping and block "
                      "table, which the trace does not build (it passes the attention group's)")
    if leaf == "_fused_norm_rope_kernel" and param == "topk_indices_ptr" and ev.constexprs.get("HAS_INDEXER") is True:
        return InitSpec("const", (-1,))
    for rule in (index_topk_contents, qsa_metadata_contents, slot_mapping_contents, step5_contents):
        got = rule(a, ev, param, facts)
        if got is not None:
            return got
    return None
