"""Init specs from what the trace knows of a storage (a leaf of :mod:`.inits`): contents vLLM's host wrote
(:func:`of_contents`) and host-built tables of device addresses (:func:`pointer_targets`)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from vkc.invoke.triton.plan import InitSpec, Value
from vkc.invoke.triton.recipes.base import DTYPE_BYTES
from vkc.modeltrace.contents import Contents, PointerTarget
from vkc.modeltrace.records import TensorArg

from .initbase import Refused
from .initbase import numel as _numel

__all__ = ["KNOWN_VALUES_MAX", "of_contents", "pointer_targets"]

KNOWN_VALUES_MAX = 1 << 16     # a known storage up to this many elements is inlined, else its runs


def of_contents(c: Contents) -> InitSpec | None:
    """Known contents as an init spec: one value -> ``const``; ``runs`` when they take at most half the
    elements (a request-owner map, a block table's zero tail) or there are too many to inline; else ``values``."""
    if c.const is not None:
        return InitSpec("const", (c.const,))
    if c.numel <= KNOWN_VALUES_MAX and 2 * len(c.runs) > c.numel:
        return InitSpec("values", (c.values(),))
    if len(c.runs) <= KNOWN_VALUES_MAX:
        return InitSpec("runs", ([v for v, _n in c.runs], [n for _v, n in c.runs]))
    return None


def pointer_targets(table: Sequence[PointerTarget], a: TensorArg,
                    known: Mapping[str, Contents] | None = None) -> InitSpec:
    """A host-built table of device addresses: ``("pointer_targets", entries)``, one real allocation per
    entry as large as the storage it pointed at, of its dtype, filled as a weight matrix (randn/sqrt(K),
    K its last dimension), the entry its address plus the traced element offset.  A target whose
    contents the trace knows (``known``: vLLM's block tables, the block ids its host staged) gets them
    as a fifth element, its init spec."""
    if a.itemsize != 8 or not a.dtype.startswith(("int", "uint")):
        raise Refused(f"a table of addresses traced as {a.dtype} (8-byte integers expected)")
    if len(table) != _numel(a):
        raise Refused(f"the address table holds {len(table)} entries, its buffer {_numel(a)} elements")
    entries: list[Value] = []
    for t in table:
        k = t.shape[-1] if t.shape and t.shape[-1] > 1 else 1
        entry: tuple[Value, ...] = (t.nbytes, t.dtype, t.offset, round(1.0 / math.sqrt(k), 6))
        c = (known or {}).get(t.storage) if t.storage else None
        itemsize = DTYPE_BYTES.get(t.dtype, 0)
        fill = of_contents(c) if c is not None and itemsize and c.numel == max(1, t.nbytes // itemsize) else None
        entries.append(entry + ((fill.to_literal(),) if fill is not None else ()))
    return InitSpec("pointer_targets", (tuple(entries),))
