"""Buffer contents of a model-traced launch: the init spec of each base storage, from its producer.

vLLM's own metadata made the traced tensors; the recorder says who made each storage
(:attr:`vkc.modeltrace.records.TensorArg.producer`).  The rules, in order:

* known contents (:func:`vkc.modeltrace.contents.step_contents`: what vLLM's host code copied into a
  device buffer -- the metadata builders' chunk tables, FLA's ``prepare_chunk_indices`` -- or the metadata
  shadows computed, every trace; serving-feature steps: the sampler's index and parameter buffers as vLLM's
  runner wrote them on the host): one value -> ``const``, up to 64 Ki elements -> ``values``, larger ones
  (a grammar bitmask, penalty bins) -> ``runs``;
* fused-MoE routing (``_moe_C::moe_align_block_size`` / ``_moe_C::topk_softmax`` outputs,
  ``_moe_C::moe_lora_align_block_size``'s when the step's tokens are all under one LoRA slot, and the
  ``torch.full`` of ``num_tokens_post_padded`` on vLLM's naive-assignment path): valid routing
  tables as :mod:`vkc.invoke.triton.recipes.moe` lays them out (one seeded top-k routing, so the
  sorted ids, expert ids and top-k ids agree);
* attention metadata: ``block_table_tensor`` -> ``("block_rows", num_blocks, used, width)`` (each
  request's blocks first, the row's tail 0 as vLLM's persistent table leaves it; num_blocks from
  the KV cache), ``slot_mapping`` -> ``("slot_mapping", num_blocks*block_size)``,
  ``query_start_loc`` -> the step's per-sequence query lengths, prefix-summed, ``seq_lens`` -> the
  step's context lengths, float metadata (split-KV ``softmax_segm_*``) -> ``"scratch"``;
  ``input:positions`` -> each token's position; ``input:input_ids`` -> token ids below the embedding
  table's rows;
* host-built tables of device addresses (the LoRA ops' weight-pointer tables; the trace says what
  each entry points at, :func:`vkc.modeltrace.contents.step_pointers`) -> ``("pointer_targets", ...)``:
  real allocations of each target's size and dtype, weight-filled;
* an index-like buffer vLLM made with ``torch.zeros``/``torch.full`` that nothing wrote since -> that
  constant (an atomic slot counter); a ``uint8`` workspace -> ``"scratch"``;
* a buffer an earlier launch of the step wrote (:mod:`.written`): the rejection sampler's counts; the
  Mamba state indices ``_mamba_align_block_table_kernel`` gathers from the block table (:mod:`.mamba_align`);
  what other vLLM kernels leave (:mod:`.produced`);
* weights: ``*scale`` -> 1.0, biases -> randn*0.02, matrices -> randn/sqrt(K), vectors -> randn;
  KV caches and activations -> randn (integer KV caches: any value of the dtype); ``alloc`` (written by
  the kernel) -> ``"empty"``.

An integer (index-like) tensor no rule covers is refused (:class:`Refused`), never guessed.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from vkc.invoke.triton.plan import InitSpec
from vkc.invoke.triton.recipes.moe import ROUTING_SEED, routing
from vkc.modeltrace.contents import Contents, PointerTarget
from vkc.modeltrace.records import StepSpec, StepTrace, TensorArg, TracedEvent

from .constfill import FILLS, filled_value
from .initbase import MOE_LORA_ALIGN, Refused, float_bits
from .initbase import is_int as _is_int
from .initbase import lengths as _lengths
from .initbase import numel as _numel
from .initbase import padded as _padded
from .known import of_contents as _of_contents
from .known import pointer_targets
from .mamba_meta import FIELDS as MAMBA_FIELDS
from .mamba_meta import mamba_chunk_field
from .moe_rules import MOE_ALIGN, TOPK_OPS, moe_contents, naive_post_padded
from .produced import produced_contents
from .written import earlier_writers, float_output, written_before

__all__ = ["FILLS", "MOE_ALIGN", "MOE_LORA_ALIGN", "TOPK_OPS", "Refused", "StepFacts", "init_for", "pointer_targets"]

_INDEX_WORDS = ("id", "idx", "index", "indices", "table", "slot", "offset", "loc", "lens", "map", "post_pad",
                "count", "start")


@dataclass(frozen=True)
class StepFacts:
    """What the init rules need of the step: its spec, events, KV-cache block count and block size."""

    step: StepTrace
    num_blocks: int
    block_size: int
    small: bool = False
    notes: list[str] = field(default_factory=list)   # what the rules did that the header should say
    kv_bases: frozenset[str] = frozenset()            # storages of the step's KV caches
    kv_block_bytes: Mapping[str, int] = field(default_factory=dict)   # cache storage -> bytes per block
    known: Mapping[str, Contents] = field(default_factory=dict)   # storage -> contents vLLM's host wrote
    pointers: Mapping[str, tuple[PointerTarget, ...]] = field(default_factory=dict)  # address tables' targets
    kernel_source: str | None = None                  # the kernel's module source (.writeonly: unread buffers)

    def route(self, M: int, E: int, k: int) -> list[list[int]]:
        """The step's top-k routing: seeded over all E experts (FULL); SMALL routes every token to
        the same k experts (valid ids, few blocks) so the aligned GEMM fits the CPU interpreter."""
        if self.small and E > k:
            note = (f"SMALL routing: every token routed to experts 0..{k - 1} (valid, but concentrated so the "
                    "interpreter runs few blocks); FULL routes over all experts (seeded)")
            if note not in self.notes:
                self.notes.append(note)
            return routing(M, k, k, ROUTING_SEED)
        return routing(M, E, k, ROUTING_SEED)

    @property
    def spec(self) -> StepSpec:
        return self.step.spec

    def event(self, producer: str) -> TracedEvent | None:
        if not producer.startswith("event:"):
            return None
        i = int(producer.split(":", 1)[1])
        ev = self.step.events[i] if 0 <= i < len(self.step.events) else None
        return ev if ev is not None and ev.index == i else next((e for e in self.step.events if e.index == i), None)


def _index_like(param: str) -> bool:
    p = param.lower().removesuffix("_ptr")
    return any(w in p.split("_") or p.endswith(w) for w in _INDEX_WORDS)


def _metadata(field: str, a: TensorArg, facts: StepFacts) -> InitSpec:
    q, ctx = _lengths(facts.spec)
    if not _is_int(a.dtype):
        return InitSpec("scratch")
    if field == "block_table_tensor":
        if len(a.shape) == 2 and a.stride[-1] == 1 and a.stride[0] > 0:
            # rows of vLLM's persistent table (startup.block_tables): a request's blocks, then 0s
            rows = a.shape[0] + a.offset // a.stride[0]
            return InitSpec("block_rows", (facts.num_blocks, rows, -(-max(ctx) // facts.block_size), a.stride[0]))
        return InitSpec("block_table", (facts.num_blocks,))
    if field == "slot_mapping":
        return InitSpec("slot_mapping", (facts.num_blocks * facts.block_size,))
    if field == "query_start_loc":
        sums = [0]
        for n in q:
            sums.append(sums[-1] + n)
        return _padded(sums, a, sums[-1])
    if field in ("seq_lens", "seq_lens_cpu_upper_bound"):
        return _padded(ctx, a, 0)
    if "." in field:                  # a backend's per-phase metadata object: <its class>.<field>
        return _phase_field(field, a, facts)
    # GDN (linear attention) prefill, vllm/v1/attention/backends/gdn_attn.py: the FLA chunk tables of
    # third_party/flash_linear_attention/ops/index.py over the prefill query lengths (FLA_CHUNK_SIZE
    # 64), and each request's state slot = its block table's first entry
    chunks = [-(-n // FLA_CHUNK) for n in q]
    if field == "chunk_indices":
        return _padded([x for i, c in enumerate(chunks) for j in range(c) for x in (i, j)], a, 0)
    if field == "chunk_offsets":
        offs = [0]
        for c in chunks:
            offs.append(offs[-1] + c)
        return _padded(offs, a, offs[-1])
    if field == "non_spec_state_indices_tensor":
        return InitSpec("block_table", (facts.num_blocks,))
    # causal-conv1d programs (v1/attention/backends/utils.py: compute_causal_conv1d_metadata, BLOCK_M 8):
    # each program's sequence and chunk within it, PAD_SLOT_ID (-1) after the last
    blocks = [-(-n // 8) for n in q]
    if field == "batch_ptr":
        return _padded([i for i, b in enumerate(blocks) for _ in range(b)], a, -1)
    if field == "token_chunk_offset_ptr":
        return _padded([j for b in blocks for j in range(b)], a, -1)
    if field in ("has_initial_state", "prefill_has_initial_state"):     # context_lens_tensor > 0
        return _padded([int(c - n > 0) for n, c in zip(q, ctx)], a, 0)
    if field in MAMBA_FIELDS:
        got = mamba_chunk_field(field, facts.step, q, ctx)
        if isinstance(got, str):
            raise Refused(f"{field}: {got}")
        return _padded(got, a, got[-1] if field == "cu_chunk_seqlen_p" else 0)
    if field in ("state_indices_tensor_d", "state_indices_tensor_p"):   # rows of the Mamba group's block table
        return InitSpec("block_table", (facts.num_blocks,))
    raise Refused(f"no rule for the contents of index-like metadata {field!r}")


# per-phase metadata fields whose contents follow from the step (the step is one phase, so the phase's
# requests are all of them): vllm/models/minimax_m3/common/indexer.py and sparse_attention.py build
# cu_seqlens_q = query_start_loc[num_decodes:] - num_decode_tokens, context_lens = the tokens computed
# before this step (compute_num_computed_tokens), cu_seqlens_k = [0, cumsum(seq_lens[num_decodes:])]
PHASE_FIELDS = {
    "MiniMaxM3IndexerPrefillMetadata": ("cu_seqlens_q", "context_lens"),
    "MiniMaxM3SparsePrefillMetadata": ("cu_seqlens_q", "cu_seqlens_k", "context_lens"),
}


def _phase_field(field: str, a: TensorArg, facts: StepFacts) -> InitSpec:
    cls, name = field.split(".", 1)
    if name not in PHASE_FIELDS.get(cls, ()):
        raise Refused(f"no rule for the contents of index-like metadata {field!r}")
    q, ctx = _lengths(facts.spec)
    if name == "cu_seqlens_q":
        return _metadata("query_start_loc", a, facts)
    if name == "context_lens":
        return _padded([c - n for n, c in zip(q, ctx)], a, 0)
    ks = [0]
    for c in ctx:
        ks.append(ks[-1] + c)
    return _padded(ks, a, ks[-1])


FLA_CHUNK = 64      # vllm/third_party/flash_linear_attention/ops/utils.py: FLA_CHUNK_SIZE
# the gates' chunk-local cumsum (third_party/flash_linear_attention/ops/cumsum.py) of log-sigmoid decays
CUMSUM_GATES = (":chunk_local_cumsum_scalar_kernel", ":chunk_local_cumsum_vector_kernel")
FLA = "vllm.third_party.flash_linear_attention."


def _positions(a: TensorArg, facts: StepFacts) -> InitSpec:
    q, ctx = _lengths(facts.spec)
    pos = [c - n + i for n, c in zip(q, ctx) for i in range(n)]
    return _padded(pos, a, 0)


def _token_ids(param: str, a: TensorArg, launch: TracedEvent, facts: StepFacts) -> InitSpec:
    """The step's input token ids: any ids of the vocabulary, ``randint(0, V)`` with V the rows of the
    embedding table the step reads (``weight:*embed_tokens.weight``: this launch's, else the step's
    first), as a prompt's tokens are."""
    tables = [t for _n, t in launch.tensors() if t.producer.endswith("embed_tokens.weight")]
    tables += [t for ev in facts.step.events for _n, t in ev.tensors() if t.producer.endswith("embed_tokens.weight")]
    if not _is_int(a.dtype) or not tables or not tables[0].shape:
        raise Refused(f"{param}: the step's input token ids, but no embedding table in the trace bounds them")
    return InitSpec("randint", (0, int(tables[0].shape[0])))


def _weight(name: str, a: TensorArg) -> InitSpec:
    leaf = name.rsplit(".", 1)[-1].lower()
    if _is_int(a.dtype):
        return InitSpec("randn")          # packed/quantised weights: any bits are valid
    if "scale" in leaf:
        return InitSpec("const", (1.0,))
    if leaf.endswith("bias"):
        return InitSpec("randn_scaled", (0.02,))
    if len(a.shape) >= 2 and a.shape[-1] > 1:
        return InitSpec("randn_scaled", (round(1.0 / math.sqrt(a.shape[-1]), 6),))
    return InitSpec("randn")


# integer KV caches hold quantised data (int8 per-token-head values, int4 pairs packed in a byte): any
# value of the storage's dtype is a valid element; wider integer caches take small values
_INT_KV_RANGE = {"int8": (-128, 128), "uint8": (0, 256)}


def _kv_data(a: TensorArg) -> InitSpec:
    """A KV cache's contents: randn (float caches), every value of the dtype (integer caches)."""
    if not _is_int(a.dtype):
        return InitSpec("randn")
    lo, hi = _INT_KV_RANGE.get(a.dtype, (-4, 5))
    return InitSpec("randint", (lo, hi))


def _known(a: TensorArg, facts: StepFacts) -> InitSpec | None:
    c = facts.known.get(a.base)
    return None if c is None else _of_contents(c)


def init_for(param: str, a: TensorArg, launch: TracedEvent, facts: StepFacts,
             seen: Mapping[str, InitSpec] | None = None, depth: int = 0) -> InitSpec:
    """The init spec of the storage ``a`` views (raises :class:`Refused`)."""
    table = facts.pointers.get(a.base)
    if table is not None:
        return pointer_targets(table, a, facts.known)
    known = _known(a, facts)
    if known is not None:
        return known
    p = a.producer
    naive = naive_post_padded(param, launch)
    if naive is not None:
        return naive
    if p.startswith("metadata:"):
        return _metadata(p.split(":", 1)[1], a, facts)
    if p == "gathered:metadata:block_table_tensor" and _is_int(a.dtype):   # block-table entries: block ids
        return InitSpec("block_table", (facts.num_blocks,))
    if p == "input:positions":
        return _positions(a, facts)
    if p == "input:input_ids":
        return _token_ids(param, a, launch, facts)
    if p.startswith("weight:"):
        leaf = p.split(":", 1)[1]
        if _is_int(a.dtype) and _index_like(leaf.rsplit(".", 1)[-1]):
            raise Refused(f"index-like weight {leaf} has no contents rule")
        return _weight(leaf, a)
    if p.startswith("kv_cache:") or a.base in facts.kv_bases or a.origin.startswith("kv_cache:"):
        return _kv_data(a)
    ev = facts.event(p)
    if ev is not None:
        moe = moe_contents(a, ev, facts)
        if moe is not None:
            return moe
        left = produced_contents(a, ev, facts)
        if left is not None:
            return left
        if not _is_int(a.dtype):
            if ev.name.endswith(CUMSUM_GATES):   # FLA's chunk-local cumulative log-decay: <= 0, exp() <= 1
                return InitSpec("uniform", (-1.0, 0.0))
            if FLA in ev.name and a.shape and a.shape[-1] > 1:
                # FLA's delta-rule inputs are L2-normalised keys and the WY factors made from them:
                # unit-scale rows, or the recurrent state overflows over a 2K-token sequence
                return InitSpec("randn_scaled", (round(1.0 / math.sqrt(a.shape[-1]), 6),))
            return float_output(param) or InitSpec("randn")
        if ev.kind == "aten" and ev.name in FILLS and (filled := filled_value(ev, a)) is not None:
            return filled
        if ev.kind == "aten" and ev.name in SELECTING and depth < 8:
            picked = _selected(param, ev, launch, facts, seen, depth)
            if picked is not None:
                return picked
        if ev.kind == "triton" and depth < 8:     # the recorder credits a launch with storages it only read
            prev = next((t for _n, t in ev.tensors() if t.base == a.base), None)
            if prev is not None and prev.producer != p:
                return init_for(param, prev, launch, facts, seen, depth + 1)
        if (bits := float_bits(a, ev)) is not None:
            return bits
        raise Refused(f"{param}: index-like tensor produced by {ev.name} (no contents rule)")
    if p == "alloc":
        earlier = earlier_writers(a, launch, facts.step.events)
        if earlier:
            return written_before(param, a, earlier, lambda n, t, e: init_for(n, t, e, facts), facts.notes)
    if p == "alloc" or not _is_int(a.dtype):
        if _is_int(a.dtype) and _index_like(param):
            if p == "alloc" and a.fill is not None:   # torch.zeros/full: vLLM's constant, unwritten since
                return InitSpec("const", (int(a.fill),))
            raise Refused(f"{param}: index-like tensor of unknown contents (producer {p})")
        return InitSpec("empty") if p == "alloc" else InitSpec("randn")
    if a.dtype == "uint8" and "workspace" in param.lower():
        # raw bytes of vLLM's workspace manager (vllm/v1/worker/workspace.py: views of one persistent
        # torch.empty buffer every op reuses): uninitialised memory to the op that takes it
        return InitSpec("scratch")
    raise Refused(f"{param}: index-like tensor of unknown contents (producer {p})")


# aten ops whose result elements are elements of their ``self`` (or, for where, of ``self``/``other``):
# a storage of one value stays that value (clamped by clamp)
SELECTING = frozenset({"aten::gather", "aten::index", "aten::_to_copy", "aten::clone", "aten::where",
                       "aten::clamp"})


def _selected(param: str, ev: TracedEvent, launch: TracedEvent, facts: StepFacts,
              seen: Mapping[str, InitSpec] | None, depth: int) -> InitSpec | None:
    """The contents of an element-selecting aten op's result when its source holds one value: that
    value (vLLM's sampled token ids are a gather of an earlier kernel's per-block argmax ids); None
    otherwise.  ``where`` with an unrecorded 0-dim ``other`` (a pad constant the trace does not see)
    takes ``self`` throughout, and the header says so."""
    args = dict(ev.args)
    src = args.get("self")
    if not isinstance(src, TensorArg):
        return None
    if ev.name in ("aten::_to_copy", "aten::clone") and ev.outputs and len(ev.outputs) == 1:
        sp = facts.event(src.producer)
        if sp is not None and sp.name == "aten::topk":
            return _topk_indices(src, sp, ev.outputs[0])
    try:
        spec = init_for(param, src, launch, facts, seen, depth + 1)
    except Refused:
        return None
    if spec.kind == "values" and ev.name in ("aten::_to_copy", "aten::clone"):
        return _copied_values(spec, src, ev)
    if spec.kind != "const" or not isinstance(spec.params[0], (int, float)):
        return None
    value = spec.params[0]
    if ev.name == "aten::clamp":
        lo, hi = (getattr(args.get(k), "value", None) for k in ("min", "max"))
        value = max(value, lo) if isinstance(lo, (int, float)) else value
        value = min(value, hi) if isinstance(hi, (int, float)) else value
    if ev.name == "aten::where":
        other = args.get("other")
        if not (isinstance(other, TensorArg) and other.producer == "alloc" and not other.shape):
            return None
        note = (f"{param}: {ev.name}(condition, self, other) taken as self throughout (other is a 0-dim "
                "constant the trace does not record: the pad value)")
        if note not in facts.notes:
            facts.notes.append(note)
    return InitSpec("const", (int(value) if _is_int(ev.outputs[0].dtype if ev.outputs else src.dtype) else value,))


def _contiguous(a: TensorArg) -> bool:
    want: list[int] = []
    step = 1
    for d in reversed(a.shape):
        want.insert(0, step)
        step *= d
    return all(st == w for st, w, d in zip(a.stride, want, a.shape) if d > 1)


def _copied_values(spec: InitSpec, src: TensorArg, ev: TracedEvent) -> InitSpec | None:
    """``_to_copy``/``clone`` of a whole contiguous storage of exact values (positions cast to int32):
    the same values in the result's storage (an integer cast keeps them: they are ids and positions)."""
    values = spec.params[0]
    out = ev.outputs[0] if len(ev.outputs) == 1 else None
    if out is None or not isinstance(values, list) or src.offset or out.offset:
        return None
    if not (_contiguous(src) and _contiguous(out)) or _numel(src) != len(values) or _numel(out) != len(values):
        return None
    if not (_is_int(src.dtype) and _is_int(out.dtype)):
        return None
    return InitSpec("values", (list(values),))


def _topk_indices(idx: TensorArg, topk: TracedEvent, out: TensorArg) -> InitSpec | None:
    """``aten::topk(self, k)``'s indices (copied to ``out``): each row k distinct ids of the last
    dimension (seeded), as any top-k leaves them."""
    src = dict(topk.args).get("self")
    dim = getattr(dict(topk.args).get("dim"), "value", -1)
    if not isinstance(src, TensorArg) or len(idx.shape) != 2 or dim not in (-1, len(src.shape) - 1):
        return None
    rows, k = idx.shape
    if idx.base not in {o.base for o in topk.outputs} or out.offset or _numel(out) != rows * k:
        return None
    return _padded([x for row in routing(rows, src.shape[-1], k, ROUTING_SEED) for x in row], out, 0)
