"""The test worker's harness (runs only inside :mod:`.worker`): CPU tensors, fixtures, parameters.

* :class:`CpuDevice`: a ``TorchFunctionMode`` that turns every ``device="cuda..."`` into the CPU,
  ``Tensor.cuda()`` into the tensor itself and ``Tensor.to("cuda")`` into ``.to("cpu")``; with
  ``torch.set_default_device`` / ``torch.cuda.synchronize`` / streams / events patched to match.
  vLLM still sees the fake H100 (vkc's tracer platform), so it picks its CUDA code paths.
* :func:`fixture_contexts`: the fixtures a kernel test may take that the harness can satisfy
  (``default_vllm_config``, ``monkeypatch``, ``workspace_init``; for op jobs also the plain fixtures
  of the test module and its conftest files); any other is :class:`Unsatisfied`.
* :func:`choose_params`: the first parametrization (passing over degenerate zero sizes), with the
  size parameters whose names say which model dimension they are replaced by the model's (``dtype``
  only where the test lists the model's dtype); :func:`variants`: the other parametrizations an
  op job tries when the first does not reach its op.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from vkc.modeltrace.startup import FakeStream

__all__ = ["DTYPE_NAMES", "SIZE_NAMES", "CpuDevice", "Unsatisfied", "choose_params", "fixture_contexts",
           "install_cpu_patches", "value_text", "variants"]

# parameter name -> key of the request's "dims" (vkc.invoke.core.dims.ModelDims field)
SIZE_NAMES: Mapping[str, str] = {
    "num_heads": "h_q", "num_q_heads": "h_q", "num_query_heads": "h_q", "num_attention_heads": "h_q",
    "n_heads": "h_q", "nheads": "h_q", "num_kv_heads": "h_kv", "num_key_value_heads": "h_kv",
    "n_kv_heads": "h_kv", "head_size": "head_dim", "head_dim": "head_dim", "headdim": "head_dim",
    "hidden_size": "hidden", "hidden_dim": "hidden", "d_model": "hidden", "intermediate_size": "intermediate",
    "num_experts": "num_experts", "topk": "topk", "top_k": "topk", "vocab_size": "vocab",
    "kv_lora_rank": "kv_lora_rank", "qk_rope_head_dim": "qk_rope_head_dim",
}
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


class CpuDevice:
    """Enter to redirect CUDA placements to the CPU (a ``TorchFunctionMode``, built lazily)."""

    def __init__(self) -> None:
        from torch.overrides import TorchFunctionMode

        class _Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
                kwargs = dict(kwargs or {})
                if "device" in kwargs:
                    kwargs["device"] = _cpu(kwargs["device"])
                name = getattr(func, "__name__", "")
                if name == "cuda" and args:
                    return args[0]
                if name == "to":
                    args = tuple(_cpu(a) for a in args)
                return func(*args, **kwargs)

        self._mode = _Mode()

    def __enter__(self) -> Any:
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)


def install_cpu_patches() -> None:
    import torch

    real_default = torch.set_default_device
    torch.set_default_device = lambda d: real_default(_cpu(d))  # type: ignore[assignment]
    torch.cuda.synchronize = lambda *a, **k: None  # type: ignore[assignment]
    torch.cuda.empty_cache = lambda *a, **k: None  # type: ignore[assignment]
    torch.cuda.Stream = FakeStream  # type: ignore[assignment,misc]
    torch.cuda.Event = FakeStream  # type: ignore[assignment,misc]
    torch.cuda.current_stream = lambda *a, **k: FakeStream()  # type: ignore[assignment]
    torch.cuda.stream = lambda *a, **k: contextlib.nullcontext()  # type: ignore[assignment]
    torch.cuda.set_device = lambda *a, **k: None  # type: ignore[assignment]


@contextlib.contextmanager
def _default_vllm_config() -> Iterator[Any]:
    from vllm.config import VllmConfig, set_current_vllm_config

    config = VllmConfig()
    with set_current_vllm_config(config):
        yield config


@contextlib.contextmanager
def _monkeypatch() -> Iterator[Any]:
    import pytest

    with pytest.MonkeyPatch.context() as mp:
        yield mp


@contextlib.contextmanager
def _workspace_init() -> Iterator[None]:
    import torch
    from vllm.v1.worker.workspace import init_workspace_manager, reset_workspace_manager

    init_workspace_manager(torch.device("cpu"))
    try:
        yield None
    finally:
        reset_workspace_manager()


_FIXTURES = {"default_vllm_config": _default_vllm_config, "monkeypatch": _monkeypatch,
             "workspace_init": _workspace_init}


@contextlib.contextmanager
def fixture_contexts(names: list[str], stack: contextlib.ExitStack, module: Any = None) -> Iterator[dict[str, Any]]:
    """Enter each fixture of ``names`` (all or :class:`Unsatisfied`); yields name -> value.

    With ``module`` (the test's module; op jobs only) a fixture the harness does not provide is
    looked up as a plain ``@pytest.fixture`` of the module or of a ``conftest.py`` above it (no
    ``request``, no params) and called, its own fixtures resolved the same way."""
    missing = [n for n in names if n not in _FIXTURES and (module is None or _find_fixture(n, module) is None)]
    if missing:
        raise Unsatisfied(f"fixture{'s' if len(missing) > 1 else ''} {', '.join(missing)} not provided by the harness")
    yield {n: _enter(n, module, stack, 0) for n in names}


def _conftests(module: Any) -> list[Any]:
    import importlib

    parts = module.__name__.split(".")[:-1]
    out = []
    for i in range(len(parts), 0, -1):
        try:
            out.append(importlib.import_module(".".join(parts[:i] + ["conftest"])))
        except Exception:  # noqa: BLE001, S112 -- a folder without (an importable) conftest.py
            continue
    return out


def _find_fixture(name: str, module: Any) -> Any | None:
    """The function under the ``@pytest.fixture`` ``name`` of ``module`` or a conftest above it."""
    for mod in [module, *_conftests(module)]:
        wrapped = getattr(getattr(mod, name, None), "_get_wrapped_function", None)
        if callable(wrapped):
            return wrapped()
    return None


def _enter(name: str, module: Any, stack: contextlib.ExitStack, depth: int) -> Any:
    import inspect

    if name in _FIXTURES:
        return stack.enter_context(_FIXTURES[name]())
    fn = _find_fixture(name, module) if module is not None and depth < 4 else None
    if fn is None:
        raise Unsatisfied(f"fixture {name} not provided by the harness")
    args = [p for p, v in inspect.signature(fn).parameters.items() if v.default is inspect.Parameter.empty]
    if "request" in args:
        raise Unsatisfied(f"fixture {name} takes pytest's request (not provided by the harness)")
    kwargs = {a: _enter(a, module, stack, depth + 1) for a in args}
    if inspect.isgeneratorfunction(fn):
        return stack.enter_context(contextlib.contextmanager(fn)(**kwargs))
    return fn(**kwargs)


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
        out.append(v.values if hasattr(v, "values") and hasattr(v, "marks") else v)
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
            m = _mapped(n, row[i], [r[i] for r in rows], dims) if dims is not None else _NO
            if m is not _NO:
                mapped[n] = value_text(m)
                kwargs[n] = m
            else:
                kwargs[n] = row[i]
    return kwargs, mapped, indirect

