"""The test worker's harness (runs only inside :mod:`.worker`): CPU tensors, fixtures, parameters.

* :class:`CpuDevice`: a ``TorchFunctionMode`` that turns every ``device="cuda..."`` into the CPU,
  ``Tensor.cuda()`` into the tensor itself and ``Tensor.to("cuda")`` into ``.to("cpu")``; with
  ``torch.set_default_device`` / ``torch.cuda.synchronize`` / streams / events patched to match.
  vLLM still sees the fake H100 (vkc's tracer platform), so it picks its CUDA code paths.
* the fixtures a kernel test may take: :mod:`.fixtures`;
* :func:`choose_params`: the first parametrization (passing over degenerate zero sizes), with the
  size parameters whose names say which model dimension they are replaced by the model's (``dtype``
  only where the test lists the model's dtype); :func:`variants`: the other parametrizations an
  op job tries when the first does not reach its op.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from vkc.modeltrace.startup import FakeStream
from vkc.testtrace.sizes import BATCH_NAMES

__all__ = [
    "DTYPE_NAMES",
    "SIZE_NAMES",
    "TOPK_NAMES",
    "CpuDevice",
    "Unsatisfied",
    "choose_params",
    "install_cpu_patches",
    "is_cuda_tensor",
    "mappable_names",
    "maps_topk",
    "value_text",
    "variants",
]

# parameter name -> key of the request's "dims" (vkc.invoke.core.dims.ModelDims field); the one-letter
# "E" / "e" are the expert count in every 0.33.0 test that parametrizes them (tests/kernels/moe/*,
# tests/kernels/test_minimax_m3_amd_ops.py, tests/v1/determinism/); the other one-letter names
# ("N", "K", "H", "D", "dim") mean different sizes in different tests, so they stay the test's own
SIZE_NAMES: Mapping[str, str] = {
    "num_heads": "h_q", "num_q_heads": "h_q", "num_query_heads": "h_q", "num_attention_heads": "h_q",
    "n_heads": "h_q", "nheads": "h_q", "num_kv_heads": "h_kv", "num_key_value_heads": "h_kv",
    "n_kv_heads": "h_kv", "head_size": "head_dim", "head_dim": "head_dim", "headdim": "head_dim",
    "hidden_size": "hidden", "hidden_dim": "hidden", "d_model": "hidden", "intermediate_size": "intermediate",
    "num_experts": "num_experts", "E": "num_experts", "e": "num_experts", "topk": "topk", "top_k": "topk", "vocab_size": "vocab",
    "kv_lora_rank": "kv_lora_rank", "qk_rope_head_dim": "qk_rope_head_dim",
    **BATCH_NAMES,    # the workload's step: num_tokens, batch_size, num_seqs (vkc.testtrace.sizes)
}
# "topk" / "top_k" is the experts per token only in an MoE test (one that parametrizes the expert count
# or lives in a "moe" folder / module); elsewhere it is a sampler's or an indexer's top-k, a request
# setting, not a model size, so it stays the test's own
TOPK_NAMES = frozenset({"topk", "top_k"})
EXPERT_NAMES = frozenset(n for n, k in SIZE_NAMES.items() if k == "num_experts")


def maps_topk(names: Iterable[str], where: str) -> bool:
    """Whether a test with parameters ``names`` at ``where`` (its file or module) is an MoE test."""
    return "moe" in where.lower() or any(n in EXPERT_NAMES for n in names)


def mappable_names(params: Iterable[tuple[str, object]], where: str) -> frozenset[str]:
    """The parameter names of a test's ``parametrize`` marks (``(names, values)`` pairs, names
    comma-separated) that :func:`choose_params` maps from a model's dimensions (``SIZE_NAMES`` keys;
    ``topk`` only in an MoE test); ``where``: the test's file or module.  Static: nothing is imported."""
    names = [n.strip() for spec, _values in params for n in spec.split(",")]
    moe = maps_topk(names, where)
    return frozenset(n for n in names if n in SIZE_NAMES and (moe or n not in TOPK_NAMES))


DTYPE_NAMES = ("dtype", "itype", "torch_dtype", "act_dtype", "input_dtype", "in_dtype")


class Unsatisfied(Exception):
    """A fixture (or parameter) the harness cannot provide; the message names it."""


def _cpu(d: Any) -> Any:
    import torch

    if isinstance(d, torch.device) and d.type == "cuda":
        return torch.device("cpu")
    if isinstance(d, str) and d.startswith("cuda"):
        return "cpu"
    return d


_CUDA_ATTR = "_vkc_cuda"         # set on the tensors the test meant for the GPU
_DEFAULT_CUDA = [False]           # the test called torch.set_default_device("cuda")


def _wants_cuda(d: Any) -> bool:
    import torch

    return (isinstance(d, torch.device) and d.type == "cuda") or (isinstance(d, str) and d.startswith("cuda"))


def _tensors(args: Any, kwargs: Mapping[str, Any]) -> list[Any]:
    import torch

    out = []
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out += [x for x in a if isinstance(x, torch.Tensor)]
    return out


def is_cuda_tensor(t: Any) -> bool:
    """Whether the test made ``t`` (or the tensors it derives from) for the GPU."""
    return bool(getattr(t, _CUDA_ATTR, False))


def _mark(out: Any) -> None:
    import torch

    for t in out if isinstance(out, (list, tuple)) else (out,):
        if isinstance(t, torch.Tensor) and not is_cuda_tensor(t):
            try:
                setattr(t, _CUDA_ATTR, True)
            except (AttributeError, RuntimeError):
                pass


class CpuDevice:
    """Enter to redirect CUDA placements to the CPU (a ``TorchFunctionMode``, built lazily).

    The tensors made for the GPU (``device="cuda"``, ``.cuda()``, ``.to("cuda")``, the default device,
    and every result of an op on one of them) answer ``is_cuda`` True and ``is_cpu`` False, as on
    the GPU (vLLM's wrappers assert ``not q.is_cpu``); a tensor the test made for the host stays a
    host tensor.  ``.cuda()`` / ``.to("cuda")`` of a host tensor copies it, as the real transfer does."""

    def __init__(self) -> None:
        from torch.overrides import TorchFunctionMode

        class _Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                import torch

                kwargs = dict(kwargs or {})
                name = getattr(func, "__name__", "")
                if name == "__get__":
                    attr = getattr(getattr(func, "__self__", None), "__name__", "")
                    if attr in ("is_cpu", "is_cuda") and args:
                        return is_cuda_tensor(args[0]) == (attr == "is_cuda")
                    return func(*args, **kwargs)
                inputs = _tensors(args, kwargs)
                cuda = any(is_cuda_tensor(t) for t in inputs) or (_DEFAULT_CUDA[0] and not inputs)
                if "device" in kwargs:
                    cuda = _wants_cuda(kwargs["device"]) or (kwargs["device"] is None and cuda)
                    kwargs["device"] = _cpu(kwargs["device"])
                if name == "cuda" and args:
                    out = args[0] if is_cuda_tensor(args[0]) else args[0].clone()
                    _mark(out)
                    return out
                if name == "cpu" and args and is_cuda_tensor(args[0]):
                    return args[0].clone()          # the copy to the host (inside the mode: not marked)
                if name == "to":
                    devs = [a for a in args[1:] if isinstance(a, (str, torch.device))]
                    cuda = _wants_cuda(devs[0]) if devs else cuda
                    args = tuple(_cpu(a) for a in args)
                out = func(*args, **kwargs)
                if name == "to" and args and out is args[0] and cuda != is_cuda_tensor(out):
                    out = out.clone()               # a transfer between host and GPU copies
                if cuda:
                    _mark(out)
                return out

        self._mode = _Mode()

    def __enter__(self) -> Any:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)
        _DEFAULT_CUDA[0] = False


def install_cpu_patches() -> None:
    import torch

    real_default = torch.set_default_device

    def set_default_device(d: Any) -> None:
        _DEFAULT_CUDA[0] = _wants_cuda(d)
        real_default(_cpu(d))

    class _AnyGenerator(type(torch._C.Generator)):  # type: ignore[misc]
        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, torch._C.Generator)

    class _Generator(torch._C.Generator, metaclass=_AnyGenerator):
        """``torch.Generator(device="cuda")``: a CPU generator (the CPU build has no CUDA one); every
        generator is still an instance."""

        def __new__(cls, device: Any = "cpu") -> Any:
            return torch._C.Generator.__new__(cls, _cpu(device))  # type: ignore[call-arg]

        def __init__(self, device: Any = "cpu") -> None:
            pass

    class _Graph:
        """``torch.cuda.CUDAGraph``: capturing runs the body once (its launches are recorded), replay does nothing."""

        def capture_begin(self, *a: Any, **k: Any) -> None:
            return None

        capture_end = replay = reset = enable_debug_mode = debug_dump = capture_begin

        def pool(self) -> tuple[int, int]:
            return (0, 0)

    torch.set_default_device = set_default_device  # type: ignore[assignment]
    torch.Generator = _Generator  # type: ignore[misc]
    torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]
    torch.cuda.empty_cache = lambda *a, **k: None  # type: ignore[assignment]
    torch.cuda.Stream = FakeStream  # type: ignore[assignment,misc]
    torch.cuda.Event = FakeStream  # type: ignore[assignment,misc]
    torch.cuda.current_stream = lambda *a, **k: FakeStream()  # type: ignore[assignment]
    torch.cuda.stream = lambda *a, **k: contextlib.nullcontext()  # type: ignore[assignment]
    torch.cuda.set_device = lambda *a, **k: None  # type: ignore[assignment]
    torch.cuda.CUDAGraph = _Graph  # type: ignore[assignment,misc]
    torch.cuda.graph = lambda *a, **k: contextlib.nullcontext()  # type: ignore[assignment,misc]
    torch.cuda.graph_pool_handle = lambda: (0, 0)  # type: ignore[assignment,return-value]
    torch.cuda.manual_seed = torch.cuda.manual_seed_all = lambda *a, **k: None  # type: ignore[assignment]


def value_text(v: Any) -> str:
    """A parameter value as the test id shows it (``torch.bfloat16`` -> ``bfloat16``)."""
    import torch

    if isinstance(v, torch.dtype):
        return str(v).replace("torch.", "")
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(value_text(x) for x in v) + ")"
    text = repr(v) if isinstance(v, str) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _values(mark: Any) -> list[Any]:
    out = []
    for v in mark.args[1] if len(mark.args) > 1 else mark.kwargs.get("argvalues", []):
        marks = getattr(v, "marks", ())
        if any(getattr(m, "name", "") in ("skip", "xfail") for m in marks):
            continue
        if hasattr(v, "values") and hasattr(v, "marks"):      # a pytest.param(...): its values, one per name
            v = v.values[0] if len(v.values) == 1 and len(_names(mark)) == 1 else v.values
        out.append(v)
    return out


def _names(mark: Any) -> list[str]:
    names = mark.args[0] if mark.args else mark.kwargs["argnames"]
    return [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)


def _mapped(name: str, first: Any, values: list[Any], dims: Mapping[str, Any]) -> Any:
    """The model's value for parameter ``name``, or the sentinel ``_NO``."""
    import torch

    if name in DTYPE_NAMES and dims.get("dtype"):
        want = getattr(torch, str(dims["dtype"]), None)
        return want if want is not None and any(v is want for v in values) else _NO
    key = SIZE_NAMES.get(name)
    val = dims.get(key) if key else None
    if not isinstance(val, int) or isinstance(first, bool):
        return _NO
    if isinstance(first, int):
        return val
    if name in ("num_heads", "num_q_heads") and isinstance(first, tuple) and len(first) == 2 \
            and all(isinstance(x, int) for x in first) and isinstance(dims.get("h_kv"), int):
        return (val, int(dims["h_kv"]))
    return _NO


_NO = object()


def _has_zero(v: Any) -> bool:
    """A degenerate size (``num_tokens=0``, ``shape=(0, 128)``): such values are passed over."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return v == 0
    return isinstance(v, tuple) and any(_has_zero(x) for x in v)


def _marks(fn: Any) -> list[Any]:
    return [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]


def variants(fn: Any, limit: int = 6) -> list[dict[int, int]]:
    """Other parametrizations to try when the first does not reach the target (op jobs): one
    ``parametrize`` mark at a time set to another of its rows (``{mark index: row}``), marks of
    flags and names (``add_residual``, ``activation``) first; never a mark holding a size the model
    maps or the dtype."""
    out: list[tuple[bool, int, int]] = []
    for i, mark in enumerate(_marks(fn)):
        names, values = _names(mark), _values(mark)
        if len(values) < 2 or any(n in SIZE_NAMES or n in DTYPE_NAMES for n in names):
            continue
        rows = [list(v) if len(names) > 1 else [v] for v in values]
        first = rows.index(next((r for r in rows if not any(_has_zero(x) for x in r)), rows[0]))
        flags = all(isinstance(x, (bool, str)) or x is None for r in rows for x in r)
        out += [(not flags, i, j) for j in range(len(rows)) if j != first and not any(_has_zero(x) for x in rows[j])]
    return [{i: j} for _f, i, j in sorted(out, key=lambda t: t[0])[:limit]]


def choose_params(fn: Any, dims: Mapping[str, Any] | None, rows_of: Mapping[int, int] | None = None
                  ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """(kwargs, mapped name -> value text, indirect parameter names) of one parametrization of ``fn``:
    per ``parametrize`` mark its first values without a zero size (else its first; ``rows_of``: mark
    index -> the row to take instead, :func:`variants`), size parameters from ``dims`` when given
    (also inside a multi-name mark: ``"num_q_heads,num_kv_heads"``)."""
    kwargs: dict[str, Any] = {}
    mapped: dict[str, str] = {}
    indirect: list[str] = []
    every = [n for mark in _marks(fn) for n in _names(mark)]
    moe = maps_topk(every, str(getattr(fn, "__module__", "") or ""))
    for index, mark in enumerate(_marks(fn)):
        names, values = _names(mark), _values(mark)
        if not values:
            raise Unsatisfied(f"parametrize {','.join(names)}: every value is marked skip/xfail")
        ind = mark.kwargs.get("indirect")
        if ind:
            indirect += names if ind is True else list(ind)
        rows = [list(v) if len(names) > 1 else [v] for v in values]
        row = next((r for r in rows if not any(_has_zero(x) for x in r)), rows[0])
        if rows_of and index in rows_of:
            row = rows[rows_of[index]]
        for i, n in enumerate(names):
            if n in kwargs:
                continue
            m = _mapped(n, row[i], [r[i] for r in rows], dims) if dims is not None and (moe or n not in TOPK_NAMES) \
                else _NO
            if m is not _NO:
                mapped[n] = value_text(m)
                kwargs[n] = m
            else:
                kwargs[n] = row[i]
    return kwargs, mapped, indirect

