"""Contents of ``_mamba_align_block_table_kernel``'s output, the Mamba state indices (a rule of
:func:`vkc.invoke.triton.modeltraced.inits.init_for` for a launch that reads what that kernel wrote).

``vllm/v1/attention/backends/utils.py: mamba_get_block_table_tensor`` (``mamba_cache_mode="align"``, the
GPU path: the block table ``is_cuda``) launches it from the Mamba/GDN/KDA metadata builders: row ``r`` of
``out`` (``n_out`` = 1 + speculative blocks wide) is ``block_table[r, start + j]`` with ``start =
max((seq_lens[r] - 1) // block_size, 0)``, each request's current block onward.  The rule mirrors that
over the contents the plan gives the kernel's inputs: the block table's ``block_rows`` (a request's first
``used`` entries distinct block ids in [1, num_blocks), the tail 0) and the step's sequence lengths, so
entry ``j`` of a row is one of the row's block ids where ``start + j < used`` and the null block 0 after.
"""
from __future__ import annotations

from collections.abc import Callable

from vkc.invoke.triton.plan import InitSpec
from vkc.modeltrace.records import TensorArg, TracedEvent

from .initbase import Refused, numel

__all__ = ["MAMBA_ALIGN", "Init", "mamba_align_out"]

MAMBA_ALIGN = "_mamba_align_block_table_kernel"

Init = Callable[[str, TensorArg, TracedEvent], InitSpec]


def _ints(spec: InitSpec, t: TensorArg, n: int) -> list[int] | None:
    """The first ``n`` elements the 1-D view ``t`` reads of a storage initialised by ``spec``."""
    first = spec.params[0] if spec.params else None
    if spec.kind == "const" and isinstance(first, (int, float)):
        return [int(first)] * n
    if spec.kind == "values" and len(t.shape) == 1 and isinstance(first, (list, tuple)):
        idx = [t.offset + i * t.stride[0] for i in range(n)]
        picked = [int(v) for v in (first[i] for i in idx if 0 <= i < len(first)) if isinstance(v, (int, float))]
        return picked if len(picked) == n else None
    return None


def mamba_align_out(ev: TracedEvent, a: TensorArg, init: Init) -> InitSpec:
    """The state indices ``ev`` (a ``_mamba_align_block_table_kernel`` launch) left in ``a``'s storage:
    ``("block_rows", num_blocks, rows, k, n_out)``, k the entries of a row inside the request's blocks."""
    args = dict(ev.args)
    t = dict(ev.tensors())
    bt, seq, out = t.get("block_table_ptr"), t.get("seq_lens_ptr"), t.get("out_ptr")
    bs, n_out = (getattr(args.get(n), "value", None) for n in ("block_size", "n_out"))
    if bt is None or seq is None or out is None or not isinstance(bs, int) or not isinstance(n_out, int):
        raise Refused(f"{MAMBA_ALIGN}: cannot read block_table / seq_lens / out / block_size / n_out")
    if out.base != a.base or out.offset != 0 or len(out.shape) != 2 or numel(out) != out.shape[0] * n_out:
        raise Refused(f"{MAMBA_ALIGN}: its output is not a fresh [num_reqs, n_out] buffer")
    rows = out.shape[0]
    table = init("block_table_ptr", bt, ev)
    if table.kind != "block_rows":
        raise Refused(f"{MAMBA_ALIGN}: the block table's contents are {table.kind!r}, not vLLM's persistent rows")
    num_blocks, filled, used, _width = (int(x) if isinstance(x, (int, float)) else -1 for x in table.params)
    lens = _ints(init("seq_lens_ptr", seq, ev), seq, rows)
    if lens is None:
        raise Refused(f"{MAMBA_ALIGN}: the sequence lengths' contents are not known values")
    if rows > filled:
        raise Refused(f"{MAMBA_ALIGN}: {rows} requests, the block table fills {filled} rows")
    inside = {max(0, min(n_out, used - max((s - 1) // bs, 0))) for s in lens}
    if len(inside) != 1:
        raise Refused(f"{MAMBA_ALIGN}: requests' current blocks lie at different depths {sorted(inside)}")
    return InitSpec("block_rows", (num_blocks, rows, inside.pop(), n_out))
