"""Contents of the wrapper-compiled program's storages: :func:`storage_fill`.

One rule set for every source of op calls, in order:

* known contents (``storage -> Contents``: what vLLM's runner wrote, or what a test's own call held):
  one value -> ``const``, else the values (run-length encoded);
* a buffer vLLM allocated for the op to write (schema ``!``, producer ``alloc``) -> zeros;
* model steps (:class:`~vkc.invoke.triton.modeltraced.inits.StepFacts` given): the Triton half's
  producer rules, :func:`~vkc.invoke.triton.modeltraced.inits.init_for` -- attention metadata (block
  tables inside the KV cache, unique slots, positions), fused-MoE routing from the router's top-k,
  weights and activations;
* without a step: floating-point data -> randn; any other integer buffer is refused
  (:class:`~.host.WrapRefused`), never guessed.

Every fill is deterministic (seeded by the storage's name) and happens on the device or through one
``cudaMemcpy`` of host values; host addresses never become data.
"""
from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vkc.dtypes import BY_NAME
from vkc.invoke.cuda.untraced.contents import is_pointer_table
from vkc.modeltrace.contents import Contents
from vkc.modeltrace.records import TensorArg, TracedEvent

from .host import WrapRefused

__all__ = ["StorageFill", "cxx_elem", "scalar_type", "storage_fill"]

# dtypes vkc.dtypes has no c10 enumerator for (torch's ScalarType has them)
_EXTRA = {"float8_e5m2fnuz": ("Float8_e5m2fnuz", "c10::Float8_e5m2fnuz"),
          "float8_e8m0fnu": ("Float8_e8m0fnu", "c10::Float8_e8m0fnu"),
          "float4_e2m1fn_x2": ("Float4_e2m1fn_x2", "uint8_t")}
_KINDS = ("zero", "normal", "uniform", "const", "randint", "values", "runs", "block_table", "slot_mapping",
          "arange", "topk_ids")


def scalar_type(dtype: str) -> str:
    """``torch::headeronly::ScalarType`` enumerator of a torch dtype name (``bfloat16`` -> ``BFloat16``)."""
    d = BY_NAME.get(dtype)
    st = d.scalar_type if d is not None else None
    st = st or _EXTRA.get(dtype, (None, None))[0]
    if st is None:
        raise WrapRefused(f"dtype {dtype} has no c10::ScalarType the stand-in can hold")
    return st


def cxx_elem(dtype: str) -> str:
    """The C++ element type the program fills a storage of ``dtype`` with."""
    d = BY_NAME.get(dtype)
    t = d.cxx if d is not None else None
    t = t or _EXTRA.get(dtype, (None, None))[1]
    if t is None:
        raise WrapRefused(f"dtype {dtype} has no C++ element type")
    return t


def _is_int(dtype: str) -> bool:
    return dtype.startswith(("int", "uint")) or dtype == "bool"


@dataclass(frozen=True)
class StorageFill:
    """How one storage is filled: ``kind`` (see :data:`_KINDS`) over elements of ``ctype``."""

    kind: str
    ctype: str
    params: tuple[Any, ...] = ()
    why: str = ""            # the rule, in words (a header/comment line)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(self.kind)


RUNS_MAX = 1 << 16      # runs a program inlines (a larger known storage is refused, not truncated)


def _from_known(c: Contents, dtype: str) -> tuple[str, tuple[Any, ...]]:
    conv = int if _is_int(dtype) else float
    if c.const is not None:
        return "const", (conv(c.const),)
    if len(c.runs) > RUNS_MAX:
        raise WrapRefused(f"{len(c.runs)} runs of known values, more than the {RUNS_MAX} a program inlines")
    return "runs", (tuple(conv(v) for v, _n in c.runs), tuple(int(n) for _v, n in c.runs))


def _from_spec(kind: str, params: Sequence[Any], dtype: str) -> tuple[str, tuple[Any, ...]]:
    """An InitSpec of the Triton half (kind, params) as a fill."""
    integer = _is_int(dtype)
    if kind in ("zeros", "empty", "scratch"):
        return "zero", ()
    if kind in ("randn", "randn_scaled"):
        if integer or dtype in ("float4_e2m1fn_x2", "float8_e8m0fnu"):
            return "randint", (-4, 5) if integer and dtype != "uint8" else (0, 128)
        return "normal", (float(params[0]) if params else 1.0,)
    if kind in ("rand", "uniform"):
        return "uniform", (float(params[0]), float(params[1])) if params else (0.0, 1.0)
    if kind == "ones":
        return "const", (1,)
    if kind == "const":
        return "const", (params[0],)
    if kind == "values":
        return "values", (tuple(params[0]),)
    if kind == "runs":
        return "runs", (tuple(params[0]), tuple(int(n) for n in params[1]))
    if kind in ("block_table", "slot_mapping", "topk_ids", "randint", "arange"):
        return kind, tuple(params)
    if kind == "cumsum_lengths":
        sums = [0]
        for n in params[0]:
            sums.append(sums[-1] + int(n))
        return "values", (tuple(sums),)
    raise WrapRefused(f"no fill for contents rule {kind!r}")


def _describe(kind: str, params: Sequence[Any]) -> str:
    if kind in ("values", "runs"):
        n = len(params[0]) if kind == "values" else sum(int(c) for c in params[1])
        return f"{kind} ({n} values from vLLM's rule)"
    return f"{kind}{list(params)}" if params else kind


def storage_fill(name: str, param: str, t: TensorArg, written: bool, call: TracedEvent,
                 known: Mapping[str, Contents], facts: Any | None) -> StorageFill:
    """The fill of the storage ``t`` views, as argument ``param`` of ``call`` (``written``: schema ``!``)."""
    seed = zlib.crc32(name.encode())
    ctype = "uint8_t" if t.dtype == "float4_e2m1fn_x2" else cxx_elem(t.dtype)
    if t.dtype in ("int64", "uint64") and is_pointer_table(param, "int64_t"):
        raise WrapRefused(f"{param}: a table of device addresses; vkc does not rebuild pointer tables for a "
                          "wrapper-compiled call (host addresses are never copied as data)")
    c = known.get(t.base)
    if c is not None:
        kind, params = _from_known(c, t.dtype)
        return StorageFill(kind, ctype, params, f"known contents of {t.base} ({c.numel} values)", seed)
    if written and t.producer in ("alloc", "uninit"):   # allocated (torch.empty) for the op to write: unset
        return StorageFill("zero", ctype, (), "zeros (allocated by vLLM for the op to write)", seed)
    if facts is not None:
        from vkc.invoke.triton.modeltraced.inits import Refused, init_for
        try:
            spec = init_for(param, t, call, facts)
        except Refused as e:
            raise WrapRefused(f"{param}: {e.args[0] if e.args else 'no contents rule'}") from None
        kind, params = _from_spec(spec.kind, spec.params, t.dtype)
        return StorageFill(kind, ctype, params, f"{_describe(spec.kind, spec.params)} from producer {t.producer}",
                           seed)
    if not _is_int(t.dtype):
        return StorageFill("normal", ctype, (1.0,), "randn (floating-point data)", seed)
    raise WrapRefused(f"{param}: integer tensor of unknown contents (producer {t.producer}); "
                      "pass its contents with the op call")
