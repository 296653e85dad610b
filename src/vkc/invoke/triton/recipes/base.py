"""The Triton recipe interface: how a wrapper family is driven at a model's shapes.

A recipe module ``vkc.invoke.triton.recipes.<family>`` defines ``RECIPES``: a tuple of core
:class:`~vkc.invoke.core.recipe.Recipe` records (made with :func:`triton_recipe`), each naming
the kernels it serves (``"module:qualname"``), its :class:`~vkc.invoke.core.family.Family`, the
workloads its wrapper runs and the default one, what it needs of the model
(:class:`~vkc.invoke.core.dims.Need`, checked before any trace starts), helper modules whose
source feeds the trace-cache key, and its ``plan``: a :class:`TritonRecipe` holding

``shapes(model: dict, workload: str, budget_bytes: int, small: bool) -> dict``
    Pure Python, runs inside vkc (no torch needed).  ``model`` is
    :meth:`vkc.invoke.core.dims.ModelDims.recipe_dict` (the ModelConfig as a JSON dict);
    returns the problem sizes (JSON-serialisable: ints, floats, str, bool, lists) sized so the
    live set of all buffers is about ``budget_bytes`` (:func:`vkc.invoke.common.budget_bytes`),
    respecting page/tile multiples and ``max_position_embeddings``.  ``small=True`` gives
    SMALL_SANITY sizes that run under ``TRITON_INTERPRET=1`` on CPU in seconds.  Raising
    NotApplicableError means "not this model" (exit 12); any other exception is a reported
    failure of the recipe (exit 9), never a silent switch to the generic example.
``call(vllm_mod_getter, shp: dict, T) -> None``
    Runs INSIDE the trace worker (``python -m vkc.invoke.triton.traced.worker``) with the
    vLLM tree importable, Triton real, and no GPU.  ``shp`` carries ``"kernel"`` (the qualified
    name being traced).  Builds inputs with :meth:`TensorFactory.tensor` and calls the real vLLM
    wrapper, importing it with ``vllm_mod_getter("vllm.x.y")``.  Every Triton launch is
    captured, not run.
``flops_bytes(shp: dict, launch: dict) -> tuple[float | None, float | None]`` (optional)
    FLOPs and bytes moved by ONE launch (``launch`` is the captured launch record: keys
    ``args`` (name -> {"kind": "tensor", "shape", "stride", "dtype", "itemsize"} or
    {"kind": "scalar", "value"}), ``constexprs``, ``grid``).  The result line prints
    TFLOP/s when flops is given, else GB/s.  Default (:func:`default_flops_bytes`):
    flops None, bytes = sum of the tensor arguments' sizes.
``platform`` (optional)
    ``"h100"`` (default: fake H100 profile, CUDA platform) or ``"generic"``
    (vLLM's UnspecifiedPlatform; for wrappers that route to a CUDA op on a CUDA platform).
``select(launches: list[dict], kernel: str) -> list[int]`` (optional)
    Which of the captured launches of the kernel to use (default: all, the first is the
    one the invocation example reproduces).

Init specs (``init=`` of :meth:`TensorFactory.tensor`), each reproduced by the generated
script on CUDA with a fixed seed.  A spec is a string or a tuple whose first item is the kind:

=========================================  ==================================================
``"randn"``                                 normal(0, 1) (floats; fp8 via a float32 draw)
``"rand"``                                  uniform [0, 1)
``"zeros"`` / ``"ones"``                    constant 0 / 1
``"empty"``                                 contents irrelevant (allocated zero-filled); checked
                                            finite after the launch (an output)
``"scratch"``                               intermediate (allocated zero-filled); may legitimately
                                            hold non-finite values (e.g. -inf running maxima), so
                                            it is NOT checked finite
``("const", value)``                        filled with value
``("arange", start, step)``                 start + step * i over the flattened tensor
``("randint", low, high)``                  uniform integers in [low, high)
``("values", [v0, v1, ...])``               exactly these values (flattened, numel must match)
``("cumsum_lengths", [l0, l1, ...])``       int prefix sums [0, l0, l0+l1, ...] (numel = n+1)
``("block_table", num_blocks)``             2-D [rows, cols]: every row a distinct random set of
                                            block ids in [0, num_blocks) (needs
                                            rows*cols <= num_blocks; else ids are reused)
``("block_rows", num_blocks, rows,         vLLM's persistent block table, rows of ``width``
used, width)``                              entries: the first ``rows`` rows' first ``used``
                                            entries distinct block ids in [1, num_blocks) (reused
                                            only when they cannot be), every other entry 0 (the
                                            null block: a row's tail, rows outside the batch)
``("slot_mapping", num_slots)``             distinct random slot ids in [0, num_slots)
``("topk_ids", num_experts)``               2-D [tokens, k]: each row k distinct expert ids
``("pointer_table", targets, nbytes)``      a table of device addresses (int64): ``targets``
                                            zero-filled allocations of ``nbytes`` bytes each,
                                            entry i the address of allocation ``i % targets``
                                            (kept alive by the script)
``("overlay", init, views)``                a storage of two kinds of data: filled by ``init``,
                                            then each view ``[shape, stride, offset, dtype,
                                            value]`` (element strides of its dtype) set to value
                                            (the scales packed beside a KV cache's int values)
``("pointer_targets", entries)``           a table of device addresses (8-byte ints), one entry
                                            per ``(nbytes, dtype, offset, scale)``: a real
                                            allocation of ``nbytes`` bytes of ``dtype`` filled
                                            randn*scale (an entry's optional fifth element: the
                                            target's own init spec), the entry its address +
                                            ``offset`` elements (kept alive by the script)
``("topk_rows", width, lengths, k)``        rows of ``width`` entries, one per length ``L``: the first
                                            ``min(k, L)`` distinct random ids in [0, L), then -1 (a
                                            top-k index table, -1 where a row is shorter than k);
                                            rows past the lengths -1; a length ``[L, head, tail]``
                                            puts ids 0..head-1 first, then L-tail..L-1 (blocks the
                                            scores force in), then random ones
``("region_rows", width, values, counts)``  rows of ``width`` entries, one per current region ``c``
                                            (run-length encoded: ``values`` repeated ``counts``):
                                            -1, then the regions ``0..c`` in the last ``c + 1``
                                            entries (Step5's region lists); rows past them -1
``("randn_as", float_dtype)``               normal(0, 1) values of ``float_dtype`` reinterpreted as
                                            the buffer's integer dtype of the same width (floating
                                            data vLLM moves as integers)
``("randn_scaled", scale)``                 normal(0, 1) * scale
``("uniform", low, high)``                  uniform [low, high)
=========================================  ==================================================

Extend the set by adding a kind here (document it) and in
``vkc/invoke/triton/templates/invoke.py.j2`` (``_init_tensor``) and in
:data:`INIT_KINDS`; the invoker rejects unknown kinds.

Views the wrapper makes of these tensors are fine: each captured kernel tensor argument
is mapped back to its base (same storage) and rebuilt in the script with
``base.as_strided(shape, stride, storage_offset)`` (element strides).  Tensors the
wrapper allocates itself become zero-filled buffers of the storage's size.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vkc.invoke.core.dims import Need
from vkc.invoke.core.family import Family
from vkc.invoke.core.recipe import Recipe

# init kind -> number of parameters after the kind
INIT_KINDS: dict[str, int] = {
    "randn": 0, "rand": 0, "zeros": 0, "ones": 0, "empty": 0, "scratch": 0,
    "const": 1, "arange": 2, "randint": 2, "values": 1, "cumsum_lengths": 1,
    "block_table": 1, "block_rows": 4, "slot_mapping": 1, "topk_ids": 1, "randn_scaled": 1, "uniform": 2,
    "runs": 2,      # run-length values: (values, counts), e.g. a request's bitmask or penalty bins
    "pointer_table": 2,   # (targets, nbytes): addresses of real allocations
    "overlay": 2,         # (init, views): a base fill, then constant views of another dtype
    "pointer_targets": 1,  # ((nbytes, dtype, offset, scale), ...): one real allocation per entry
    "topk_rows": 3,       # (width, lengths, k): per row min(k, L) distinct ids below L, then -1
    "randn_as": 1,        # (float dtype): normal values of that dtype, reinterpreted as the buffer's
    "region_rows": 3,     # (width, values, counts): per row -1 padding, then regions 0..current
}

DTYPE_BYTES: dict[str, int] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2,
    "float8_e4m3fn": 1, "float8_e4m3fnuz": 1, "float8_e5m2": 1, "float8_e5m2fnuz": 1,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1,
}


def normalize_init(init: Any) -> tuple:
    """Canonical tuple form of an init spec; raises ValueError for unknown kinds."""
    spec = (init,) if isinstance(init, str) else tuple(init)
    if not spec or spec[0] not in INIT_KINDS:
        raise ValueError(f"unknown init spec {init!r}; known kinds: {sorted(INIT_KINDS)}")
    if len(spec) - 1 != INIT_KINDS[spec[0]]:
        raise ValueError(f"init spec {init!r} takes {INIT_KINDS[spec[0]]} parameter(s)")
    return tuple(list(x) if isinstance(x, (list, tuple)) else x for x in spec)


class TensorFactory(Protocol):
    """What ``call`` receives as ``T`` (implemented by the trace worker)."""

    device: str          # "meta"

    def tensor(self, name: str, shape: Sequence[int], dtype: Any, init: Any = "randn") -> Any:
        """A new base tensor (torch, on the meta device).

        ``name``: unique, a valid Python identifier (used in the script); ``dtype``: a
        torch dtype or its name ("bfloat16"); ``init``: an init spec (table above).
        """
        ...

    def dtype(self, name: str) -> Any:
        """torch dtype for a name ("bfloat16", "fp8" -> the platform's fp8 dtype)."""
        ...


ModGetter = Callable[[str], Any]
ShapesFn = Callable[[dict, str, int, bool], dict]
CallFn = Callable[[ModGetter, dict, Any], None]
FlopsFn = Callable[[dict, dict], "tuple[float | None, float | None]"]
SelectFn = Callable[[list, str], list]


def default_flops_bytes(shp: dict, launch: dict) -> tuple[float | None, float | None]:
    """flops None; bytes = sum over tensor arguments of numel(view) * itemsize."""
    total = 0
    for a in launch.get("args", {}).values():
        if a.get("kind") == "tensor":
            n = 1
            for s in a["shape"]:
                n *= int(s)
            total += n * int(a["itemsize"])
    return None, float(total)


@dataclass(frozen=True)
class TritonRecipe:
    """``Recipe.plan`` of a Triton recipe: sizing inside vkc, the wrapper call inside the trace worker."""

    shapes: ShapesFn
    call: CallFn
    flops_bytes: FlopsFn = default_flops_bytes
    select: SelectFn | None = None
    platform: str = "h100"

    def __call__(self, model: dict, workload: str, budget_bytes: int, small: bool) -> dict:
        return self.shapes(model, workload, budget_bytes, small)


ATTENTION_HELPERS = ("vkc.invoke.triton.recipes._attn",)


def triton_recipe(kernels: Sequence[str], family: Family, shapes: ShapesFn, call: CallFn, *,
                  workloads: Sequence[str] = ("prefill", "decode"), default_workload: str,
                  needs: Sequence[Need] = (), flops_bytes: FlopsFn | None = None, select: SelectFn | None = None,
                  platform: str = "h100", helpers: Sequence[str] = ()) -> Recipe:
    """A core Recipe record for Triton (``plan`` is a :class:`TritonRecipe`)."""
    plan = TritonRecipe(shapes=shapes, call=call, flops_bytes=flops_bytes or default_flops_bytes, select=select,
                        platform=platform)
    return Recipe(lang="triton", kernels=tuple(kernels), family=family, plan=plan, workloads=tuple(workloads),
                  default_workload=default_workload, needs=tuple(needs), helpers=tuple(helpers))


def round_up(x: int, m: int) -> int:
    return ((int(x) + m - 1) // m) * m


def round_down(x: int, m: int) -> int:
    return max(m, (int(x) // m) * m)


def model_dtype(model: dict) -> str:
    """Activation dtype for the model ("bfloat16" unless the config says float16/float32)."""
    d = (model.get("dtype") or "bfloat16").replace("torch.", "")
    return d if d in ("float16", "bfloat16", "float32") else "bfloat16"


def dispatch(family: str, calls: dict, vllm_mod_getter: Any, shp: dict, T: Any) -> None:
    """For recipe modules serving several kernels: run the wrapper of ``shp["kernel"]`` (the
    qualified name the trace worker sets) from ``calls`` (kernel -> function(getter, shp, T))."""
    from vkc.errors import InvocationError

    kernel = shp.get("kernel")
    if kernel not in calls:
        raise InvocationError(f"recipe {family}: no wrapper for {kernel}", hint=f"kernels: {sorted(calls)}")
    calls[kernel](vllm_mod_getter, shp, T)
