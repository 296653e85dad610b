"""vkc's one dtype vocabulary (a leaf: imports nothing from vkc).

Every torch dtype by its canonical name (``torch.<name>``), with the facts vkc needs of it:
itemsize and kind (generated from torch 2.13 on CPU; dtype facts do not depend on the device),
the ``c10::ScalarType`` enumerator and the C++ type AT_DISPATCH binds ``scalar_t`` to, the
Triton signature type (``*bf16`` for a pointer) and the ``triton.language`` attribute.  Other
tables of the package derive from :data:`DTYPES` instead of spelling dtypes again.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALIASES",
    "BY_NAME",
    "DTYPES",
    "TORCH_ALIASES",
    "DType",
    "by_scalar_type",
    "canonical",
    "cxx_type",
    "itemsize",
    "triton_name",
]


@dataclass(frozen=True)
class DType:
    name: str                       # canonical torch name: "bfloat16"
    itemsize: int                   # bytes per element (1 for sub-byte and packed types)
    is_floating_point: bool
    is_complex: bool
    is_signed: bool | None          # None: not an arithmetic type (bits*, quantized)
    abbr: str                       # torch's abbreviation ("bf16", "f8e4m3fn", "i32")
    scalar_type: str | None = None  # c10::ScalarType enumerator: "BFloat16"
    cxx: str | None = None          # C++ type of the dispatched scalar_t: "c10::BFloat16"
    triton: str | None = None       # Triton signature type: "bf16" (a pointer: "*bf16")
    tl: str | None = None           # triton.language attribute: "bfloat16", "float8e4nv"


# name, itemsize, is_floating_point, is_complex, is_signed, abbr, scalar_type, cxx, triton, tl
DTYPES: tuple[DType, ...] = (
    DType('bfloat16', 2, True, False, True, 'bf16', 'BFloat16', 'c10::BFloat16', 'bf16', 'bfloat16'),
    DType('bits16', 2, False, False, None, 'b16x1', None, None, None, None),
    DType('bits1x8', 1, False, False, None, 'b1x8', None, None, None, None),
    DType('bits2x4', 1, False, False, None, 'b2x4', None, None, None, None),
    DType('bits4x2', 1, False, False, None, 'b4x2', None, None, None, None),
    DType('bits8', 1, False, False, None, 'b8x1', None, None, None, None),
    DType('bool', 1, False, False, False, 'b8', 'Bool', 'bool', 'i1', 'int1'),
    DType('complex128', 16, False, True, True, 'c128', None, None, None, None),
    DType('complex32', 4, False, True, True, 'c32', None, None, None, None),
    DType('complex64', 8, False, True, True, 'c64', None, None, None, None),
    DType('float16', 2, True, False, True, 'f16', 'Half', 'c10::Half', 'fp16', 'float16'),
    DType('float32', 4, True, False, True, 'f32', 'Float', 'float', 'fp32', 'float32'),
    DType('float4_e2m1fn_x2', 1, True, False, True, 'f4e2m1fnx2', None, None, None, None),
    DType('float64', 8, True, False, True, 'f64', 'Double', 'double', 'fp64', 'float64'),
    DType('float8_e4m3fn', 1, True, False, True, 'f8e4m3fn', 'Float8_e4m3fn', 'c10::Float8_e4m3fn', 'fp8e4nv', 'float8e4nv'),
    DType('float8_e4m3fnuz', 1, True, False, True, 'f8e4m3fnuz', 'Float8_e4m3fnuz', 'c10::Float8_e4m3fnuz', 'fp8e4b8', 'float8e4b8'),
    DType('float8_e5m2', 1, True, False, True, 'f8e5m2', 'Float8_e5m2', 'c10::Float8_e5m2', 'fp8e5', 'float8e5'),
    DType('float8_e5m2fnuz', 1, True, False, True, 'f8e5m2fnuz', None, None, 'fp8e5b16', 'float8e5b16'),
    DType('float8_e8m0fnu', 1, True, False, False, 'f8e8m0fnu', None, None, None, None),
    DType('int1', 1, False, False, True, 'int1', None, None, None, None),
    DType('int16', 2, False, False, True, 'i16', 'Short', 'int16_t', 'i16', 'int16'),
    DType('int2', 1, False, False, True, 'int2', None, None, None, None),
    DType('int3', 1, False, False, True, 'int3', None, None, None, None),
    DType('int32', 4, False, False, True, 'i32', 'Int', 'int32_t', 'i32', 'int32'),
    DType('int4', 1, False, False, True, 'int4', None, None, None, None),
    DType('int5', 1, False, False, True, 'int5', None, None, None, None),
    DType('int6', 1, False, False, True, 'int6', None, None, None, None),
    DType('int64', 8, False, False, True, 'i64', 'Long', 'int64_t', 'i64', 'int64'),
    DType('int7', 1, False, False, True, 'int7', None, None, None, None),
    DType('int8', 1, False, False, True, 'i8', 'Char', 'int8_t', 'i8', 'int8'),
    DType('qint32', 4, False, False, None, 'qint32', None, None, None, None),
    DType('qint8', 1, False, False, None, 'qint8', None, None, None, None),
    DType('quint2x4', 1, False, False, None, 'quint2x4', None, None, None, None),
    DType('quint4x2', 1, False, False, None, 'quint4x2', None, None, None, None),
    DType('quint8', 1, False, False, None, 'quint8', None, None, None, None),
    DType('uint1', 1, False, False, False, 'uint1', None, None, None, None),
    DType('uint16', 2, False, False, False, 'u16', 'UInt16', 'uint16_t', None, 'uint16'),
    DType('uint2', 1, False, False, False, 'uint2', None, None, None, None),
    DType('uint3', 1, False, False, False, 'uint3', None, None, None, None),
    DType('uint32', 4, False, False, False, 'u32', 'UInt32', 'uint32_t', None, 'uint32'),
    DType('uint4', 1, False, False, False, 'uint4', None, None, None, None),
    DType('uint5', 1, False, False, False, 'uint5', None, None, None, None),
    DType('uint6', 1, False, False, False, 'uint6', None, None, None, None),
    DType('uint64', 8, False, False, False, 'u64', 'UInt64', 'uint64_t', None, 'uint64'),
    DType('uint7', 1, False, False, False, 'uint7', None, None, None, None),
    DType('uint8', 1, False, False, False, 'u8', 'Byte', 'uint8_t', 'u8', 'uint8'),
)

BY_NAME: dict[str, DType] = {d.name: d for d in DTYPES}

# attribute aliases of the torch module (torch.half is torch.float16): nothing else is a torch name
TORCH_ALIASES: dict[str, str] = {
    "bit": "uint1", "cdouble": "complex128", "cfloat": "complex64", "chalf": "complex32", "double": "float64",
    "float": "float32", "half": "float16", "int": "int32", "long": "int64", "short": "int16",
}
# every spelling vkc accepts for a dtype (configs, command lines): torch's aliases and the short forms
ALIASES: dict[str, str] = {
    **TORCH_ALIASES, "bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "fp64": "float64",
}


def canonical(name: str) -> str | None:
    """The canonical torch name of ``name`` (``"torch.half"``, ``"bf16"`` -> ...), or None."""
    n = name.removeprefix("torch.")
    n = ALIASES.get(n, n)
    return n if n in BY_NAME else None


def _get(name: str) -> DType:
    c = canonical(name)
    if c is None:
        raise KeyError(f"unknown dtype {name!r}")
    return BY_NAME[c]


def itemsize(name: str) -> int:
    return _get(name).itemsize


def triton_name(name: str) -> str | None:
    """The Triton signature type of a torch dtype (``bfloat16`` -> ``bf16``), or None."""
    return _get(name).triton


def cxx_type(name: str) -> str | None:
    """The C++ type AT_DISPATCH binds for a torch dtype (``bfloat16`` -> ``c10::BFloat16``), or None."""
    return _get(name).cxx


def by_scalar_type(enumerator: str) -> DType | None:
    """The dtype of a ``c10::ScalarType`` enumerator (``Half``, ``Float8_e4m3fn``), or None."""
    return _BY_SCALAR_TYPE.get(enumerator)


_BY_SCALAR_TYPE: dict[str, DType] = {d.scalar_type: d for d in DTYPES if d.scalar_type}
