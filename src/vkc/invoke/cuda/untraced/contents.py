"""Contents of the generic CUDA plan's buffers: index-like arguments get ranged values, pointer tables
real addresses (issue 12, "the synthesizer learns the conventions").

Every generic buffer holds :data:`~.generic.GENERIC_ELEMS` elements, so whatever an index selects
is a buffer of that extent, addressed as ``index * stride`` with the plan's scalars (strides bound to
the hidden size, ...).  The rules, by the parameter's name (the conventions of vLLM's callers, as
the model-traced path reproduces them in ``invoke/triton/modeltraced/inits.py``):

* pointer tables (``T**`` / ``void**``, or an integer array named ``*_ptrs`` / ``*_addrs``): every
  entry is the address of one real device allocation (a pool declared just before the table, as
  large as :data:`POOL_BYTES`), never zeros;
* cumulative offsets (``cu_seqlens``, ``*_start_loc``, ``*_starts``, ``*offsets``, ``indptr``):
  sorted prefix sums of equal segments, ``(i * seg) % (seg * (tokens + 1) + 1)`` -- sorted over the
  first ``tokens + 1`` entries, the most the generic launch reads;
* lengths (``seq_lens``, ``*_lens``, ``lengths``): the same segment length, constant;
* expert ids (``expert_ids``, ``topk_ids``): integers below ``min(num_experts, reach)``;
* every other index (block tables, slot mappings, positions, ids, indices, maps): integers in
  ``[0, reach)``.

``reach`` is the conservative extent: ``GENERIC_ELEMS // (4 * largest integer scalar)`` (at least 1),
so ``index * stride`` plus a row's own offsets stays inside the indexed buffer.
"""
from __future__ import annotations

import re

from vkc.invoke.cuda.plan import Buffer, Fill, affine, const, host, randint

__all__ = ["POOL_BYTES", "index_fill", "index_kind", "is_pointer_table", "pointer_table", "reach"]

POOL_BYTES = 1 << 24            # a pointer table's pool: 16 MiB, 16 bytes for each of 1 Mi elements
_POINTER_NAME = re.compile(r"(ptrs|pointers|ptr_table|ptr_array|addrs|addresses)$")
_CUMULATIVE = re.compile(r"(^|_)(cu|cumsum)(_|$)|start_locs?$|(^|_)starts?$|offsets?$|indptr$|(^|_)cu_seq")
_LENGTHS = re.compile(r"(^|_)(lens|seq_lens|seqlens?|lengths?|context_lens|len)$")
_EXPERT = re.compile(r"expert_ids?$|topk_ids?$|topk_idx$|topk_id$|(^|_)experts?$")
_INDEX = re.compile(
    r"(^|_)(idx|idxs|index|indices|ids?|block_tables?|tables?|slots?|slot_mapping|mapping|loc|locs|offsets?|"
    r"indptr|lens|seq_lens|seqlens?|lengths?|starts?|positions?|pos|position_ids|rows?|map|perm)$")
_INT_ELEMS = {"int", "int32_t", "int64_t", "long", "long long", "unsigned", "unsigned int", "uint32_t",
              "uint64_t", "size_t", "int16_t", "uint16_t", "int8_t", "uint8_t", "short", "unsigned long"}


def _stem(name: str) -> str:
    n = name.lower().removeprefix("p_")
    return n[:-4] if n.endswith("_ptr") and not _POINTER_NAME.search(n) else n


def is_pointer_table(name: str, elem: str) -> bool:
    """A buffer of addresses: its elements are pointers, or integers named like a table of them."""
    return elem.endswith("*") or (elem in ("int64_t", "uint64_t", "long", "long long", "unsigned long", "size_t")
                                  and bool(_POINTER_NAME.search(_stem(name))))


def index_kind(name: str, elem: str) -> str | None:
    """``cumulative`` / ``lengths`` / ``experts`` / ``index`` for an index-like integer buffer, else None."""
    if elem not in _INT_ELEMS:
        return None
    s = _stem(name)
    if not _INDEX.search(s) and not _EXPERT.search(s) and not _CUMULATIVE.search(s):
        return None
    if _CUMULATIVE.search(s):
        return "cumulative"
    if _LENGTHS.search(s):
        return "lengths"
    if _EXPERT.search(s):
        return "experts"
    return "index"


def reach(elems: int, scalars: list[int]) -> int:
    """How far an index may reach into a buffer of ``elems`` elements addressed with these scalars."""
    return max(1, elems // (4 * max([1, *(abs(v) for v in scalars)])))


def index_fill(kind: str, reach_: int, tokens: int, num_experts: int | None) -> tuple[Fill, str]:
    """(fill, description) of an index-like buffer of the given kind."""
    seg = max(1, reach_ // max(1, tokens))
    if kind == "cumulative":
        return affine(seg, 0, seg * (tokens + 1) + 1), f"sorted offsets i*{seg} (segments of {seg})"
    if kind == "lengths":
        return const(f"{seg}"), f"lengths {seg} (inside the {reach_}-row reach)"
    if kind == "experts":
        e = max(1, min(num_experts or 1, reach_))
        return randint(0, e), f"expert ids < {e}"
    return randint(0, reach_), f"indices < {reach_} (the indexed buffers' reach)"


def pointer_table(var: str, elem: str, pool: str) -> tuple[Buffer, Fill]:
    """(pool buffer, the table's host fill): each table entry is the pool's device address."""
    target = elem[:-1].strip() if elem.endswith("*") else "unsigned char"
    if target in ("void", "") or target.endswith("*"):
        target = "unsigned char"
    count = f"(size_t){POOL_BYTES} / sizeof({target})"
    buf = Buffer(pool, target, count, Fill("zero"), "inout", f"(pool of {var}'s addresses)")
    code = f"for (size_t i = 0; i < n; ++i) h[i] = ({elem})(uintptr_t)({pool});"
    return buf, host(code)
