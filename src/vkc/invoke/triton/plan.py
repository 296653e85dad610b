"""The Triton launch plan: what one invocation example launches, typed and frozen.

A :class:`TritonPlan` holds two configurations (``FULL``: the model's shapes sized for an
H100; ``SMALL``: SMALL_SANITY sizes for the CPU interpreter), each a :class:`LaunchConfig`:
base buffers (:class:`Buffer`, with an :class:`InitSpec`), the kernel's runtime arguments in
parameter order (a :class:`TensorView` of a buffer or a :class:`Scalar`), the grid, the
constexprs, ``num_warps`` / ``num_stages`` / other launch options, the live set, the FLOPs and
bytes of one launch and the problem sizes.  :class:`LaunchInfo` is what is known about the
launch itself (traced: vLLM's launch site, Triton's own signature, autotuning; untraced: the
parameter names and how the example was synthesised).

``LaunchConfig.to_literal()`` is the exact structure the generated script's ``CONFIGS``
literal renders (``vkc.pyliteral.pyrepr``): tensor views as
``("tensor", base, shape, stride, storage_offset, dtype)`` and scalars as ``("scalar", value)``
-- the script's stable format; nothing inside vkc reads those tuples.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

# A JSON-like value as the trace worker and the generic path produce it (constexprs, scalars,
# options, init parameters): dicts tag what JSON cannot say ({"__tl_dtype__": "bf16"}, ...).
Value: TypeAlias = "None | bool | int | float | str | list[Value] | tuple[Value, ...] | dict[str, Value]"
Path = Literal["traced", "generic", "guess"]

TRITON_DEFAULT_WARPS = 4
TRITON_DEFAULT_STAGES = 3
TORCH_TO_TRITON: Mapping[str, str] = {
    "float16": "fp16", "bfloat16": "bf16", "float32": "fp32", "float64": "fp64",
    "float8_e4m3fn": "fp8e4nv", "float8_e5m2": "fp8e5", "float8_e4m3fnuz": "fp8e4b8",
    "float8_e5m2fnuz": "fp8e5b16", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
    "uint8": "u8", "bool": "i1",
}
COMPILE_TARGET = ("cuda", 90, 32)


@dataclass(frozen=True)
class InitSpec:
    """How the script fills a base buffer: ``kind`` plus its parameters (see recipes.base)."""

    kind: str
    params: tuple[Value, ...] = ()

    @classmethod
    def of(cls, spec: Sequence[Value]) -> InitSpec:
        kind = spec[0]
        if not isinstance(kind, str):
            raise TypeError(f"init kind must be a str, got {kind!r}")
        return cls(kind, tuple(spec[1:]))

    def to_literal(self) -> tuple[Value, ...]:
        return (self.kind, *self.params)


ZEROS = InitSpec("zeros")
RANDN = InitSpec("randn")


def fill_for(dtype: str) -> InitSpec:
    """The default fill of a synthesised buffer: zeros for integer data, else randn."""
    return ZEROS if dtype.startswith(("int", "uint")) else RANDN


@dataclass(frozen=True)
class Buffer:
    """A base buffer the script allocates (its views are the kernel's tensor arguments)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    init: InitSpec

    def to_literal(self) -> tuple[list[int], str, tuple[Value, ...]]:
        return (list(self.shape), self.dtype, self.init.to_literal())


@dataclass(frozen=True)
class TensorView:
    """A tensor argument: ``base.as_strided(shape, stride, storage_offset)`` viewed as ``dtype``."""

    param: str
    base: str
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage_offset: int
    dtype: str

    def to_literal(self) -> tuple[Value, ...]:
        return ("tensor", self.base, list(self.shape), list(self.stride), self.storage_offset, self.dtype)


@dataclass(frozen=True)
class Scalar:
    """A runtime scalar argument (``None`` for a parameter passed as None)."""

    param: str
    value: Value

    def to_literal(self) -> tuple[Value, ...]:
        return ("scalar", self.value)


Arg: TypeAlias = "TensorView | Scalar"


def flat_view(param: str, numel: int, dtype: str) -> TensorView:
    """A flat, contiguous view of the buffer named like the parameter."""
    return TensorView(param, param, (numel,), (1,), 0, dtype)


@dataclass(frozen=True)
class LaunchConfig:
    """One configuration (FULL or SMALL) of the launch."""

    grid: tuple[int, ...]
    num_warps: int
    num_stages: int
    options: Mapping[str, Value]
    constexprs: Mapping[str, Value]
    buffers: tuple[Buffer, ...]
    args: tuple[Arg, ...]
    live_bytes: int
    flops: float | None
    bytes: float
    shapes: Mapping[str, Value]

    def arg(self, param: str) -> Arg:
        for a in self.args:
            if a.param == param:
                return a
        raise KeyError(param)

    def buffer(self, name: str) -> Buffer:
        for b in self.buffers:
            if b.name == name:
                return b
        raise KeyError(name)

    @property
    def tensors(self) -> tuple[TensorView, ...]:
        return tuple(a for a in self.args if isinstance(a, TensorView))

    @property
    def scalars(self) -> tuple[Scalar, ...]:
        return tuple(a for a in self.args if isinstance(a, Scalar))

    def to_literal(self) -> dict[str, Any]:
        """The ``CONFIGS[name]`` literal of the generated script (key order is the format)."""
        return {
            "grid": tuple(self.grid), "num_warps": self.num_warps, "num_stages": self.num_stages,
            "options": dict(self.options), "constexprs": dict(self.constexprs),
            "buffers": {b.name: b.to_literal() for b in self.buffers},
            "args": [(a.param, a.to_literal()) for a in self.args],
            "live_bytes": self.live_bytes, "flops": self.flops, "bytes": self.bytes, "shapes": dict(self.shapes),
        }


@dataclass(frozen=True)
class Site:
    """Where the wrapper launches the kernel (``file`` relative to the vLLM tree)."""

    file: str
    line: int
    function: str

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function}


@dataclass(frozen=True)
class LaunchInfo:
    """What is known about the reproduced launch beyond its values.

    ``signature``/``attrs``: Triton's own specialisation for sm_90 (traced; None/empty when
    it could not be computed); ``autotune``: the autotuner record of the trace worker;
    ``count``: how many selected launches of the kernel the wrapper made; ``all_launches``:
    ``qualname[grid]`` of every launch it made; ``mode``: the header's mode line (untraced).
    """

    params: tuple[str, ...]
    site: Site | None = None
    signature: Mapping[str, str] | None = None
    attrs: Mapping[str, Value] = field(default_factory=dict)
    autotune: Mapping[str, Any] | None = None
    heuristics: tuple[str, ...] = ()
    constexpr_defaulted: tuple[str, ...] = ()
    count: int = 1
    all_launches: tuple[str, ...] = ()
    mode: str | None = None


@dataclass(frozen=True)
class TritonPlan:
    """The whole launch plan of one invocation example.

    ``path``: ``traced`` (vLLM's wrapper run by a recipe), ``generic`` (synthesised from the
    signature and launch site) or ``guess`` (names only: the entry's signature was unreadable).
    ``launch`` is None only on the ``guess`` path.
    """

    full: LaunchConfig
    small: LaunchConfig
    path: Path
    launch: LaunchInfo | None = None
    versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def traced(self) -> bool:
        return self.path == "traced"

    def configs(self) -> tuple[tuple[str, LaunchConfig], ...]:
        return (("FULL", self.full), ("SMALL", self.small))

    def to_literal(self) -> dict[str, dict[str, Any]]:
        """The generated script's ``CONFIGS`` literal."""
        return {"FULL": self.full.to_literal(), "SMALL": self.small.to_literal()}


# --------------------------------------------------------------------------- compile literal


def compile_literal(entry: str, cfg: LaunchConfig, launch: LaunchInfo | None) -> dict[str, Any]:
    """Signature/constexprs/attrs of the launch for ``triton.compile`` (sm_90): ``VKC_COMPILE``.

    Triton's own signature when the trace has one (in parameter order); else derived from the
    configuration (untraced, or Triton internals changed).
    """
    signature: dict[str, str]
    if launch is not None and launch.signature:
        signature = {p: launch.signature[p] for p in launch.params}
    else:
        argmap = {a.param: a for a in cfg.args}
        order = list(launch.params) if launch is not None else list(argmap) + list(cfg.constexprs)
        signature = {p: "constexpr" if p in cfg.constexprs else sig_type(argmap[p]) for p in order}
    attrs = dict(launch.attrs) if launch is not None and launch.attrs else {}
    constexprs: dict[str, Value] = {}
    for p, t in signature.items():
        if t == "constexpr":
            constexprs[p] = cfg.constexprs[p] if p in cfg.constexprs else _scalar_or_none(cfg, p)
    return {"entry": entry, "target": COMPILE_TARGET, "signature": signature, "constexprs": constexprs,
            "attrs": {k: attrs[k] for k in sorted(attrs)}, "num_warps": cfg.num_warps,
            "num_stages": cfg.num_stages}


def _scalar_or_none(cfg: LaunchConfig, param: str) -> Value:
    a = cfg.arg(param)
    return a.value if isinstance(a, Scalar) else None


def sig_type(a: Arg) -> str:
    """The Triton signature type of an argument (``*bf16``, ``i32``, ``constexpr`` for None, ...)."""
    if isinstance(a, TensorView):
        return "*" + TORCH_TO_TRITON.get(a.dtype, "fp32")
    v = a.value
    if v is None:
        return "constexpr"
    if isinstance(v, bool):
        return "i1"
    if isinstance(v, int):
        return "i32" if -2**31 <= v < 2**31 else "i64"
    return "fp32"


__all__ = [
    "COMPILE_TARGET",
    "RANDN",
    "TORCH_TO_TRITON",
    "TRITON_DEFAULT_STAGES",
    "TRITON_DEFAULT_WARPS",
    "ZEROS",
    "Arg",
    "Buffer",
    "InitSpec",
    "LaunchConfig",
    "LaunchInfo",
    "Path",
    "Scalar",
    "Site",
    "TensorView",
    "TritonPlan",
    "Value",
    "compile_literal",
    "fill_for",
    "flat_view",
    "sig_type",
]
