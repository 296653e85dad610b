"""Host-to-device copies of the model-trace worker: the values vLLM's host code gave a device buffer
(runs only inside the worker process, called by :mod:`vkc.modeltrace.recorder`'s dispatch mode).

A copy from a CPU tensor into a meta tensor (``t.to(device, non_blocking=True)``, ``async_tensor_h2d``,
``torch.as_tensor(t, device=...)``: ``aten::_to_copy``; ``dst.copy_(src)``: ``aten::copy_``) carries real
host values: vLLM's metadata builders compute them on the host (from the step's lengths) and copy them
over.  :class:`HostMirror` keeps, per storage, a CPU copy of what such copies wrote -- a copy covering the
whole storage starts one, a copy into part of a storage only updates one that exists -- and forgets a
storage as soon as any other recorded op writes it (its contents are then no longer the host's).  Integer
and bool storages only (index data: what the plan refuses to guess), up to :data:`MAX_ELEMENTS` elements.
A Triton launch that writes such a storage is not seen (launches do not say which arguments they write;
vLLM's kernels read this metadata).  ``torch.tensor(list, device=...)`` builds its device tensor below the
dispatcher: the worker's wrapped ``torch.tensor`` (:func:`vkc.modeltrace.startup_steps.keep_tensor_values`) hands
its host values over as a copy's.

:meth:`HostMirror.step_contents` gives the step's ``host_contents``: storage id -> ``{"runs": [[value,
count], ...]}`` over the whole storage, for the storages the step's events read.
"""
from __future__ import annotations

from typing import Any

__all__ = ["MAX_ELEMENTS", "HostMirror", "runs"]

MAX_ELEMENTS = 1 << 22


def runs(values: Any) -> list[list[Any]]:
    """Run-length form ``[[value, count], ...]`` of a flat host array (vectorised)."""
    import numpy as np

    a = np.asarray(values).reshape(-1)
    if a.size == 0:
        return []
    cuts = np.flatnonzero(a[1:] != a[:-1]) + 1
    starts = np.concatenate(([0], cuts))
    lengths = np.diff(np.concatenate((starts, [a.size])))
    return [[v, int(n)] for v, n in zip(a[starts].tolist(), lengths.tolist())]


def _indexy(dtype: Any) -> bool:
    import torch

    return dtype == torch.bool or (not dtype.is_floating_point and not dtype.is_complex)


class HostMirror:
    """Per storage (the recorder's key): a CPU tensor of its elements as the host copies left them."""

    def __init__(self) -> None:
        self.mirrors: dict[int, Any] = {}
        self.alive: dict[int, Any] = {}     # a view of each mirrored storage: its key is never reused

    def forget(self, key: int) -> None:
        self.mirrors.pop(key, None)
        self.alive.pop(key, None)

    def copied(self, key: int, dst: Any, src: Any) -> bool:
        """``src`` (CPU) was copied into the meta view ``dst`` (storage ``key``): mirror it; True when the
        storage's contents are now known."""
        import torch

        n = dst.untyped_storage().nbytes() // max(1, dst.element_size())
        if not _indexy(dst.dtype) or n > MAX_ELEMENTS or src.device.type != "cpu":
            self.forget(key)
            return False
        try:
            vals = torch.empty(tuple(dst.shape), dtype=dst.dtype).copy_(src)   # copy_'s cast and broadcast
        except RuntimeError:
            self.forget(key)
            return False
        whole = dst.storage_offset() == 0 and dst.numel() == n and dst.is_contiguous()
        mirror = self.mirrors.get(key)
        if whole:
            mirror = torch.empty(n, dtype=dst.dtype)
        elif mirror is None or mirror.dtype != dst.dtype or mirror.numel() != n:
            self.forget(key)            # part of a storage whose other elements the host never wrote
            return False
        mirror.as_strided(tuple(dst.shape), tuple(dst.stride()), dst.storage_offset()).copy_(vals)
        self.mirrors[key] = mirror
        self.alive[key] = dst
        return True

    def step_contents(self, storages: dict[int, dict[str, Any]], events: list[dict[str, Any]]) -> dict[str, Any]:
        """``{storage id: {"runs": ...}}`` of the mirrored storages the step's events read or write."""
        used = {a["base"] for ev in events for _n, v in ev.get("args", []) for a in _tensors(v)}
        used |= {a["base"] for ev in events for a in ev.get("outputs", []) or [] if isinstance(a, dict)}
        out = {}
        for key, mirror in self.mirrors.items():
            st = storages.get(key)
            if st is not None and st["id"] in used:
                out[st["id"]] = {"runs": runs(mirror.numpy())}
        return dict(sorted(out.items()))


def _tensors(v: Any) -> list[dict[str, Any]]:
    if isinstance(v, dict):
        return [v] if v.get("kind") == "tensor" else []
    if isinstance(v, list):
        return [x for x in v if isinstance(x, dict) and x.get("kind") == "tensor"]
    return []
