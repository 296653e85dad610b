"""``T`` of the recipe interface inside the trace worker: meta base tensors with init specs."""
from __future__ import annotations

from typing import Any


class TensorFactoryImpl:
    """``T`` of the recipe interface: meta base tensors with init specs."""

    device = "meta"

    def __init__(self) -> None:
        self.bases: dict[str, dict[str, Any]] = {}     # name -> {shape, dtype, init, origin}
        self.by_storage: dict[int, str] = {}
        self.tensors: dict[str, Any] = {}

    def dtype(self, name: str):
        import torch

        if name in ("fp8", "fp8_e4m3"):
            from vllm.platforms import current_platform
            return current_platform.fp8_dtype()
        return getattr(torch, name.replace("torch.", ""))

    def tensor(self, name: str, shape, dtype, init: Any = "randn"):
        import torch

        from vkc.invoke.triton.recipes.base import normalize_init

        if not name.isidentifier() or name in self.bases:
            raise ValueError(f"tensor name {name!r} is not a fresh identifier")
        dt = self.dtype(dtype) if isinstance(dtype, str) else dtype
        shape = [int(s) for s in shape]
        t = torch.empty(shape, dtype=dt, device="meta")
        self.bases[name] = {"shape": shape, "dtype": _dtype_name(dt), "init": list(normalize_init(init)),
                            "origin": "recipe", "itemsize": t.element_size()}
        self.by_storage[t.untyped_storage()._cdata] = name
        self.tensors[name] = t
        return t

    def describe(self, t, param: str) -> dict[str, Any]:
        key = t.untyped_storage()._cdata
        name = self.by_storage.get(key)
        if name is None:   # allocated by the wrapper: a zero-filled flat buffer of the storage size
            nbytes = t.untyped_storage().nbytes()
            item = t.element_size()
            dt = _dtype_name(t.dtype) if nbytes % item == 0 else "uint8"
            item = item if dt != "uint8" else 1
            name = _fresh(f"w_{param.removesuffix('_ptr')}", self.bases)
            self.bases[name] = {"shape": [nbytes // item], "dtype": dt, "init": ["zeros"],
                                "origin": "wrapper", "itemsize": item}
            self.by_storage[key] = name
            self.tensors[name] = t
        return {"kind": "tensor", "base": name, "shape": list(t.shape), "stride": list(t.stride()),
                "offset": int(t.storage_offset()), "dtype": _dtype_name(t.dtype),
                "itemsize": t.element_size(), "device": t.device.type}


def _fresh(name: str, taken: dict) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def _dtype_name(dt) -> str:
    return str(dt).replace("torch.", "")


__all__ = ["TensorFactoryImpl"]
