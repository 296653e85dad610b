"""Static facts about torch dtypes, so the evaluator need not import torch (~3 s).

Module-level code in vLLM often computes ``torch.finfo(torch.float8_e4m3fn).max`` or
compares dtypes; the evaluator answers these from the table below (generated from
torch 2.13 on CPU; dtype facts do not depend on the device).  :class:`dtype` stands
in for ``torch.dtype`` (same ``str``/``repr``, equality, interned per canonical name);
``finfo``/``iinfo`` stand in for ``torch.finfo``/``torch.iinfo``.  Anything not in the
table falls back to the real torch (imported only then).
"""
from __future__ import annotations

from typing import Any

from vkc.dtypes import DTYPES as ALL_DTYPES
from vkc.dtypes import TORCH_ALIASES

# name -> canonical name (torch's own aliases: torch.half, torch.long, ...)
ALIASES: dict[str, str] = TORCH_ALIASES
# canonical name -> (is_floating_point, is_complex, is_signed, itemsize, abbr), from vkc.dtypes
DTYPES: dict[str, tuple] = {d.name: (d.is_floating_point, d.is_complex, d.is_signed, d.itemsize, d.abbr)
                            for d in ALL_DTYPES}
# canonical name -> (bits, eps, max, min, resolution, smallest_normal, tiny, dtype, repr)
FINFO: dict[str, tuple] = {
    'bfloat16': (16, 0.0078125, 3.3895313892515355e+38, -3.3895313892515355e+38, 0.01, 1.1754943508222875e-38, 1.1754943508222875e-38, 'bfloat16',
        'finfo(resolution=0.01, min=-3.38953e+38, max=3.38953e+38, eps=0.0078125, smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=bfloat16)'),
    'complex128': (64, 2.220446049250313e-16, 1.7976931348623157e+308, -1.7976931348623157e+308, 1e-15, 2.2250738585072014e-308, 2.2250738585072014e-308, 'float64',
        'finfo(resolution=1e-15, min=-1.79769e+308, max=1.79769e+308, eps=2.22045e-16, smallest_normal=2.22507e-308, tiny=2.22507e-308, dtype=float64)'),
    'complex32': (16, 0.0009765625, 65504.0, -65504.0, 0.001, 6.103515625e-05, 6.103515625e-05, 'float16',
        'finfo(resolution=0.001, min=-65504, max=65504, eps=0.000976562, smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float16)'),
    'complex64': (32, 1.1920928955078125e-07, 3.4028234663852886e+38, -3.4028234663852886e+38, 1e-06, 1.1754943508222875e-38, 1.1754943508222875e-38, 'float32',
        'finfo(resolution=1e-06, min=-3.40282e+38, max=3.40282e+38, eps=1.19209e-07, smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=float32)'),
    'float16': (16, 0.0009765625, 65504.0, -65504.0, 0.001, 6.103515625e-05, 6.103515625e-05, 'float16',
        'finfo(resolution=0.001, min=-65504, max=65504, eps=0.000976562, smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float16)'),
    'float32': (32, 1.1920928955078125e-07, 3.4028234663852886e+38, -3.4028234663852886e+38, 1e-06, 1.1754943508222875e-38, 1.1754943508222875e-38, 'float32',
        'finfo(resolution=1e-06, min=-3.40282e+38, max=3.40282e+38, eps=1.19209e-07, smallest_normal=1.17549e-38, tiny=1.17549e-38, dtype=float32)'),
    'float64': (64, 2.220446049250313e-16, 1.7976931348623157e+308, -1.7976931348623157e+308, 1e-15, 2.2250738585072014e-308, 2.2250738585072014e-308, 'float64',
        'finfo(resolution=1e-15, min=-1.79769e+308, max=1.79769e+308, eps=2.22045e-16, smallest_normal=2.22507e-308, tiny=2.22507e-308, dtype=float64)'),
    'float8_e4m3fn': (8, 0.125, 448.0, -448.0, 1.0, 0.015625, 0.015625, 'float8_e4m3fn',
        'finfo(resolution=1, min=-448, max=448, eps=0.125, smallest_normal=0.015625, tiny=0.015625, dtype=float8_e4m3fn)'),
    'float8_e4m3fnuz': (8, 0.125, 240.0, -240.0, 1.0, 0.0078125, 0.0078125, 'float8_e4m3fnuz',
        'finfo(resolution=1, min=-240, max=240, eps=0.125, smallest_normal=0.0078125, tiny=0.0078125, dtype=float8_e4m3fnuz)'),
    'float8_e5m2': (8, 0.25, 57344.0, -57344.0, 1.0, 6.103515625e-05, 6.103515625e-05, 'float8_e5m2',
        'finfo(resolution=1, min=-57344, max=57344, eps=0.25, smallest_normal=6.10352e-05, tiny=6.10352e-05, dtype=float8_e5m2)'),
    'float8_e5m2fnuz': (8, 0.125, 57344.0, -57344.0, 1.0, 3.0517578125e-05, 3.0517578125e-05, 'float8_e5m2fnuz',
        'finfo(resolution=1, min=-57344, max=57344, eps=0.125, smallest_normal=3.05176e-05, tiny=3.05176e-05, dtype=float8_e5m2fnuz)'),
    'float8_e8m0fnu': (8, 1.0, 1.7014118346046923e+38, 5.877471754111438e-39, 1.0, 5.877471754111438e-39, 5.877471754111438e-39, 'float8_e8m0fnu',
        'finfo(resolution=1, min=5.87747e-39, max=1.70141e+38, eps=1, smallest_normal=5.87747e-39, tiny=5.87747e-39, dtype=float8_e8m0fnu)'),
}
# canonical name -> (bits, max, min, dtype, repr)
IINFO: dict[str, tuple] = {
    'int16': (16, 32767, -32768, 'int16', 'iinfo(min=-32768, max=32767, dtype=int16)'),
    'int32': (32, 2147483647, -2147483648, 'int32', 'iinfo(min=-2.14748e+09, max=2.14748e+09, dtype=int32)'),
    'int64': (64, 9223372036854775807, -9223372036854775808, 'int64', 'iinfo(min=-9.22337e+18, max=9.22337e+18, dtype=int64)'),
    'int8': (8, 127, -128, 'int8', 'iinfo(min=-128, max=127, dtype=int8)'),
    'uint16': (16, 65535, 0, 'uint16', 'iinfo(min=0, max=65535, dtype=uint16)'),
    'uint32': (32, 4294967295, 0, 'uint32', 'iinfo(min=0, max=4.29497e+09, dtype=uint32)'),
    'uint64': (64, 18446744073709551615, 0, 'uint64', 'iinfo(min=0, max=1.84467e+19, dtype=uint64)'),
    'uint8': (8, 255, 0, 'uint8', 'iinfo(min=0, max=255, dtype=uint8)'),
}


def _real_torch():
    import torch

    return torch


class dtype:  # lower case like torch.dtype, so messages read the same
    """Stand-in for a ``torch.dtype``; one instance per canonical name."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"torch.{self.name}"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, dtype):
            return other.name == self.name
        if type(other).__name__ == "dtype" and type(other).__module__ == "torch":
            return str(other) == str(self)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        r = self.__eq__(other)
        return r if r is NotImplemented else not r

    def __hash__(self) -> int:
        return hash(("torch.dtype", self.name))

    def __reduce__(self):
        return lookup, (self.name,)

    @property
    def is_floating_point(self) -> bool:
        return DTYPES[self.name][0]

    @property
    def is_complex(self) -> bool:
        return DTYPES[self.name][1]

    @property
    def itemsize(self) -> int:
        return DTYPES[self.name][3]

    def __getattr__(self, attr: str) -> Any:
        facts = DTYPES[self.name]
        if attr == "is_signed" and facts[2] is not None:
            return facts[2]
        if attr == "abbr":
            return facts[4]
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(self.real(), attr)

    def real(self) -> Any:
        """The real ``torch.dtype`` (imports torch)."""
        return getattr(_real_torch(), self.name)


_INTERNED = {n: dtype(n) for n in DTYPES}


def lookup(name: str) -> dtype | None:
    """``torch.<name>`` as a stand-in dtype, or None if it is not a dtype in the table."""
    return _INTERNED.get(ALIASES.get(name, name))


class finfo:
    """Stand-in for ``torch.finfo(dtype)``."""

    def __init__(self, facts: tuple):
        (self.bits, self.eps, self.max, self.min, self.resolution, self.smallest_normal, self.tiny,
         self.dtype, self._repr) = facts

    def __repr__(self) -> str:
        return self._repr


class iinfo:
    """Stand-in for ``torch.iinfo(dtype)``."""

    def __init__(self, facts: tuple):
        self.bits, self.max, self.min, self.dtype, self._repr = facts

    def __repr__(self) -> str:
        return self._repr


def _one_dtype(args: tuple, kwargs: dict, default: Any) -> Any:
    """The dtype argument of ``finfo``/``iinfo`` if the call has the plain form, else None."""
    if len(args) + len(kwargs) > 1 or set(kwargs) - {"type"}:
        return None
    return args[0] if args else kwargs.get("type", default)


def torch_finfo(*args: Any, **kwargs: Any) -> Any:
    """``torch.finfo`` from the table; the real one for anything the table lacks."""
    dt = _one_dtype(args, kwargs, _INTERNED["float32"])
    if isinstance(dt, dtype) and dt.name in FINFO:
        return finfo(FINFO[dt.name])
    return _real_torch().finfo(*_real_args(args), **_real_kwargs(kwargs))


def torch_iinfo(*args: Any, **kwargs: Any) -> Any:
    """``torch.iinfo`` from the table; the real one for anything the table lacks."""
    dt = _one_dtype(args, kwargs, None)
    if isinstance(dt, dtype) and dt.name in IINFO:
        return iinfo(IINFO[dt.name])
    return _real_torch().iinfo(*_real_args(args), **_real_kwargs(kwargs))


def _real_args(args: tuple) -> list:
    return [a.real() if isinstance(a, dtype) else a for a in args]


def _real_kwargs(kwargs: dict) -> dict:
    return {k: (v.real() if isinstance(v, dtype) else v) for k, v in kwargs.items()}


def resolve(path: str) -> tuple[bool, Any]:
    """(True, value) when ``path`` (``torch.float16``, ``torch.finfo``, ``torch.int8.itemsize``)
    is answered statically; (False, None) otherwise."""
    parts = path.split(".")
    if len(parts) < 2 or parts[0] != "torch":
        return False, None
    if len(parts) == 2 and parts[1] == "finfo":
        return True, torch_finfo
    if len(parts) == 2 and parts[1] == "iinfo":
        return True, torch_iinfo
    obj: Any = lookup(parts[1])
    if obj is None:
        return False, None
    try:
        for p in parts[2:]:
            obj = getattr(obj, p)
    except AttributeError:
        return False, None
    return True, obj


def has_attr(attr: str) -> bool | None:
    """``hasattr(torch, attr)`` when the table knows (a dtype name); None otherwise."""
    return True if isinstance(attr, str) and lookup(attr) is not None else None
