"""vkc.dtypes: the one dtype vocabulary agrees with torch and Triton, and the tables derived from it."""
from __future__ import annotations

import pytest

from vkc import dtypes as D


def test_lookups():
    assert D.canonical("torch.half") == D.canonical("fp16") == D.canonical("float16") == "float16"
    assert D.canonical("bf16") == "bfloat16" and D.canonical("nonsense") is None
    assert D.itemsize("float8_e4m3fn") == 1 and D.itemsize("torch.long") == 8
    assert D.triton_name("bfloat16") == "bf16" and D.cxx_type("half") == "c10::Half"
    assert D.by_scalar_type("Float8_e4m3fn").name == "float8_e4m3fn" and D.by_scalar_type("Nope") is None
    with pytest.raises(KeyError):
        D.itemsize("float128")
    assert sorted(D.BY_NAME) == [d.name for d in D.DTYPES]          # sorted, unique


def test_agrees_with_torch():
    torch = pytest.importorskip("torch")
    for d in D.DTYPES:
        t = getattr(torch, d.name, None)
        if t is None:  # a dtype of a newer torch than the one installed
            continue
        assert (t.itemsize, t.is_floating_point, t.is_complex) == (d.itemsize, d.is_floating_point, d.is_complex), d
        if d.is_signed is not None:
            assert t.is_signed == d.is_signed, d
    for alias, name in D.TORCH_ALIASES.items():
        assert getattr(torch, alias) == getattr(torch, name), alias


def test_agrees_with_triton():
    tl = pytest.importorskip("triton.language")
    canon = pytest.importorskip("triton._utils").type_canonicalisation_dict  # Triton's own spellings
    for d in D.DTYPES:
        if d.tl is not None:
            assert isinstance(getattr(tl, d.tl), tl.dtype), d
        if d.triton is not None:   # the signature name means what Triton means by the torch name
            assert canon.get(d.triton, d.triton) == canon[d.name], d


def test_derived_tables():
    from vkc.extract.cuda.launch import DTYPE_NAMES, SCALAR_TYPES
    from vkc.extract.triton import torchinfo

    assert SCALAR_TYPES["BFloat16"] == "c10::BFloat16" and SCALAR_TYPES["Char"] == "int8_t" and len(SCALAR_TYPES) == 16
    assert DTYPE_NAMES["Half"] == "float16" and DTYPE_NAMES["Byte"] == "uint8" and len(DTYPE_NAMES) == 16
    assert torchinfo.lookup("half") == torchinfo.lookup("float16") and torchinfo.lookup("bf16") is None
