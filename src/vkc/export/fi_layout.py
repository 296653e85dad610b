"""What a FlashInfer-Trace Definition needs from one launch of an example (static; no artifact code runs).

* :func:`layout` -- the launch's tensors and scalars as typed Definition inputs/outputs, each
  tensor dimension named as an axis: ``var`` when its value is one of the configuration's
  batch/sequence/token/block counts (``shapes`` keys such as ``batch``, ``num_tokens``, ``M``,
  ``num_blocks``, ``blocks_per_seq``) or a dimension of an integer (index) tensor not otherwise
  named, ``const`` otherwise (named after a model dimension of that value, else ``d<value>``); a
  var axis no input carries becomes const (the format binds var axes from the inputs).
* :func:`blob_tensor` -- the values of an index-like input (block tables, slot mappings, top-k
  ids, cumulative lengths, any non-``randn`` init) built by the example's init-spec rules on CPU
  (valid values, not the example's exact random stream), for a safetensors blob.
* :func:`reference_closure` -- the example's ``reference`` function and the module-level names it
  reaches (helpers, imports, bound constants), as source text.
"""
from __future__ import annotations

import ast
import keyword
import math
import re
from dataclasses import dataclass
from typing import Any

from vkc.export.example import Example, ExampleSkip

__all__ = ["FI_DTYPES", "Layout", "blob_tensor", "layout", "needs_blob", "reference_closure"]

FI_DTYPES = frozenset({"float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "int64", "int32",
                       "int16", "int8", "bool"})
_VAR_KEYS = re.compile(r"(M|M_\w+|rows|tokens|num_tokens|T|batch|B|seqs|num_seqs|num_reqs|num_blocks|blocks_per_seq|"
                       r"max_blocks|ctx|seq_len|prompt_len|q_len|prefix|num_segments|segm_rows)")
_RANDOM_KINDS = frozenset({"randn", "zeros", "empty", "scratch"})
MAX_BLOB_ELEMENTS = 1 << 26


@dataclass(frozen=True)
class Layout:
    """One configuration of an example as Definition pieces (names are kernel parameter names)."""
    params: tuple[str, ...]                       # kernel parameters, signature order
    inputs: tuple[tuple[str, str, tuple[str, ...] | None, str], ...]  # (name, param, axes|None=scalar, dtype)
    outputs: tuple[tuple[str, str, tuple[str, ...], str, Any, bool], ...]  # (name, param, axes, dtype, index, poisoned)
    fixed: tuple[tuple[str, Any], ...]           # parameters that are no input (None pointers, dtype tags)
    axes: tuple[tuple[str, str, int], ...]        # (axis, "var"|"const", value in this config)
    bindings: tuple[tuple[str, str, int], ...]    # var axis -> (input name, dim)
    strides: tuple[tuple[str, tuple[int, ...]], ...]  # non-contiguous tensor params: their element strides
    launch: dict[str, Any]                        # grid, constexprs, num_warps, num_stages, options

    def signature(self) -> tuple[Any, ...]:
        const = tuple((a, v) for a, k, v in self.axes if k == "const")
        return (self.inputs, self.outputs, self.fixed, const, tuple(a for a, k, _ in self.axes if k == "var"),
                tuple(self.strides))

    def var_values(self) -> dict[str, int]:
        return {a: v for a, k, v in self.axes if k == "var"}


def _contiguous(shape: list[int]) -> list[int]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= max(n, 1)
    return out[::-1]


def _is_contiguous(shape: list[int], stride: list[int]) -> bool:
    return all(n <= 1 or s == c for n, s, c in zip(shape, stride, _contiguous(shape)))


def _scalar_dtype(v: Any) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int32" if -(2 ** 31) <= v < 2 ** 31 else "int64"
    if isinstance(v, float):
        return "float32"
    return None


class _Namer:
    """Axis names for dimension values of one configuration."""

    def __init__(self, shapes: dict[str, Any]) -> None:
        ints = {k: v for k, v in sorted(shapes.items()) if isinstance(v, int) and not isinstance(v, bool)
                and isinstance(k, str) and k.isidentifier()}
        self.var: dict[int, str] = {}
        for k, v in ints.items():
            if _VAR_KEYS.fullmatch(k) and v > 1:
                self.var.setdefault(v, k)
        self.const: dict[int, str] = {}
        for k, v in ints.items():
            if not _VAR_KEYS.fullmatch(k):
                self.const.setdefault(v, k)
        self.axes: dict[str, tuple[str, int]] = {}

    def name(self, value: int, param: str, dim: int, integer: bool) -> str:
        if value in self.var:
            name, kind = self.var[value], "var"
        elif integer and value > 1:
            name, kind = f"{param}_d{dim}", "var"
        else:
            name, kind = self.const.get(value, f"d{value}"), "const"
            if name in self.axes and self.axes[name] != ("const", value):
                name = f"d{value}"
        self.axes.setdefault(name, (kind, value))
        return name


def _out_name(param: str, taken: set[str]) -> str:
    name = f"{param}_out"
    while name in taken:
        name += "_"
    return name


def layout(ex: Example, config: str) -> Layout:
    """The Definition pieces of configuration ``config`` (ExampleSkip when the format cannot say it)."""
    cfg = ex.configs[config]
    namer = _Namer(cfg.get("shapes") if isinstance(cfg.get("shapes"), dict) else {})
    outs = {p: (i, poisoned) for p, i, poisoned, _t in ex.outputs}
    params = tuple(p for p, _s in cfg["args"])
    if any(keyword.iskeyword(p) or p.startswith("__") for p in params):
        raise ExampleSkip("a kernel parameter name is not usable as a Python argument")
    inputs: list[tuple[str, str, tuple[str, ...] | None, str]] = []
    outputs: list[tuple[str, str, tuple[str, ...], str, Any, bool]] = []
    fixed: list[tuple[str, Any]] = []
    strides: list[tuple[str, tuple[int, ...]]] = []
    tensor_axes: dict[str, tuple[str, ...]] = {}
    for p, spec in cfg["args"]:
        if spec[0] == "scalar":
            dt = _scalar_dtype(spec[1])
            if p in outs:
                raise ExampleSkip(f"output {p} is a scalar argument")
            if dt:
                inputs.append((p, p, None, dt))
            else:
                fixed.append((p, spec[1]))
            continue
        _t, _base, shape, stride, _offset, dt = spec
        if dt not in FI_DTYPES:
            raise ExampleSkip(f"dtype {str(dt)[:20]} of {p} is not one of FlashInfer-Trace's dtypes")
        if any(s == 0 and n > 1 for n, s in zip(shape, stride)):
            raise ExampleSkip(f"broadcast (stride-0) view {p}: the format cannot say its elements are equal")
        integer = not dt.startswith(("float", "bfloat"))
        tensor_axes[p] = tuple(namer.name(int(n), p, d, integer) for d, n in enumerate(shape))
        if not _is_contiguous(list(shape), list(stride)):
            strides.append((p, tuple(int(s) for s in stride)))
        if p in outs and outs[p][1]:
            continue                     # a pure output: not an input
        inputs.append((p, p, tensor_axes[p], dt))
    names = {n for n, *_ in inputs} | set(params)
    for p, (index, poisoned) in outs.items():
        dt = next(s[5] for q, s in cfg["args"] if q == p)
        outputs.append((p if poisoned else _out_name(p, names), p, tensor_axes[p], dt, index, poisoned))
    bindings: dict[str, tuple[str, int]] = {}
    for name, _p, ax, _dt in inputs:
        for d, axis in enumerate(ax or ()):
            if namer.axes[axis][0] == "var":
                bindings.setdefault(axis, (name, d))
    axes = [(a, "var" if k == "var" and a in bindings else "const", v) for a, (k, v) in namer.axes.items()]
    launch = {k: cfg.get(k) for k in ("grid", "constexprs", "num_warps", "num_stages", "options")}
    return Layout(params, tuple(inputs), tuple(outputs), tuple(fixed), tuple(axes),
                  tuple((a, n, d) for a, (n, d) in bindings.items()), tuple(strides), launch)


def needs_blob(ex: Example, config: str, param: str) -> bool:
    """Index-like or specially initialised inputs: random inputs would be invalid for them."""
    cfg = ex.configs[config]
    spec = dict(cfg["args"])[param]
    if spec[0] != "tensor":
        return False
    kind = cfg["buffers"][spec[1]][2]
    dt = spec[5]
    integer = not dt.startswith(("float", "bfloat"))
    scaled = kind[0] == "randn_scaled" and (len(kind) < 2 or kind[1] != 1)
    return integer or scaled or kind[0] not in _RANDOM_KINDS | {"randn_scaled"}


def _init(torch: Any, shape: list[int], dtype_name: str, init: tuple, gen: Any) -> Any:
    """One base buffer by its init spec (the rules of the example's ``_init_tensor``), on CPU."""
    dtype = getattr(torch, dtype_name)
    kind, params = init[0], list(init[1:])
    numel = math.prod(shape)
    floating = dtype.is_floating_point
    gen_dtype = torch.float16 if (floating and dtype.itemsize == 1) else dtype
    if kind in ("zeros", "empty", "scratch"):
        return torch.zeros(shape, dtype=dtype)
    if kind == "ones":
        return torch.ones(shape, dtype=dtype)
    if kind == "const":
        return torch.full(shape, params[0], dtype=gen_dtype).to(dtype)
    if kind in ("randn", "randn_scaled"):
        if not floating:
            return torch.randint(-4, 5, shape, dtype=dtype, generator=gen)
        return (torch.randn(shape, dtype=gen_dtype, generator=gen) * (params[0] if params else 1.0)).to(dtype)
    if kind in ("rand", "uniform"):
        lo, hi = (params[0], params[1]) if params else (0.0, 1.0)
        return (torch.rand(shape, dtype=gen_dtype if floating else torch.float32, generator=gen) * (hi - lo) + lo).to(dtype)
    if kind == "arange":
        return (torch.arange(numel, dtype=torch.float64 if floating else torch.int64) * params[1]
                + params[0]).to(dtype).reshape(shape)
    if kind == "randint":
        return torch.randint(params[0], params[1], shape, dtype=dtype, generator=gen)
    if kind == "values":
        return torch.tensor(params[0], dtype=dtype).reshape(shape)
    if kind == "cumsum_lengths":
        return torch.cumsum(torch.tensor([0] + list(params[0]), dtype=torch.int64), 0).to(dtype).reshape(shape)
    if kind == "runs":
        vals = torch.tensor(params[0], dtype=dtype)
        return vals.repeat_interleave(torch.tensor(params[1])).reshape(shape)
    if kind == "block_rows":
        num_blocks, rows, used, width = params
        used = min(used, width)
        need = rows * used
        ids = (torch.randperm(num_blocks - 1, generator=gen)[:need] + 1 if need <= num_blocks - 1
               else torch.randint(1, max(num_blocks, 2), (need,), generator=gen))
        table = torch.zeros(max(-(-numel // width), rows), width, dtype=torch.int64)
        table[:rows, :used] = ids.reshape(rows, used)
        return table.reshape(-1)[:numel].to(dtype).reshape(shape)
    if kind in ("block_table", "slot_mapping"):
        n = params[0]
        ids = torch.randperm(n, generator=gen)[:numel] if numel <= n else torch.randint(0, n, (numel,), generator=gen)
        return ids.to(dtype).reshape(shape)
    if kind == "topk_ids":
        rows, k = shape[0], shape[-1]
        return torch.rand(rows, params[0], generator=gen).argsort(dim=1)[:, :k].to(dtype).reshape(shape)
    raise ExampleSkip(f"unknown init spec {str(init)[:40]}")


def blob_tensor(ex: Example, config: str, param: str) -> Any:
    """The input's values (contiguous, CPU) or None when its base buffer is too large for a blob."""
    import torch

    cfg = ex.configs[config]
    _t, base, shape, stride, offset, dt = dict(cfg["args"])[param]
    bshape, bdt, init = cfg["buffers"][base]
    if math.prod(bshape) > MAX_BLOB_ELEMENTS:
        return None
    gen = torch.Generator().manual_seed(0)
    buf = _init(torch, list(bshape), bdt, tuple(init), gen)
    dtype = getattr(torch, dt)
    t = buf if buf.dtype == dtype else buf.view(-1).view(torch.uint8).view(dtype)
    return t.as_strided(shape, stride, offset).contiguous()


def _bound(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in node.names]
    return []


def reference_closure(ex: Example) -> str:
    """``reference`` and the module-level statements it reaches (original order and text)."""
    assert ex.tree is not None
    defs: dict[str, list[ast.stmt]] = {}
    for node in ex.tree.body:
        for name in _bound(node):
            defs.setdefault(name, []).append(node)
    keep: set[int] = set()
    todo = ["reference", "torch"]
    while todo:
        name = todo.pop()
        for node in defs.get(name, []):
            if id(node) in keep:
                continue
            keep.add(id(node))
            todo.extend(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
    lines = ex.code.splitlines()
    out = []
    for node in ex.tree.body:
        if id(node) not in keep:
            continue
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while start > 1 and lines[start - 2].startswith("# from "):
            start -= 1
        out.append("\n".join(lines[start - 1:node.end_lineno]))
    return "\n\n\n".join(out)
