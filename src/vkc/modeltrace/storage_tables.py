"""The recorder's storage tables while a serving feature runs (worker side; a leaf of
:mod:`vkc.modeltrace.serving` and :mod:`vkc.modeltrace.runner_prepare`, which nest them)."""
from __future__ import annotations

from typing import Any

__all__ = ["FEATURE_STORAGE_OFFSET", "FeatureStorages", "feature_storages"]

FEATURE_STORAGE_OFFSET = 1_000_000


class FeatureStorages(dict):  # type: ignore[type-arg]
    """The recorder's storage table while a feature runs: storages the feature names are its own,
    numbered ``s1000000`` on, so the forward's storage ids (``s<n>``, counted from the table's
    length) are the plain trace's in every step; look-ups fall through to the forward's table."""

    def __init__(self, forward: dict[int, Any], own: dict[int, Any], offset: int = FEATURE_STORAGE_OFFSET) -> None:
        super().__init__(own)
        self.forward = forward
        self.offset = offset

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or key in self.forward

    def __getitem__(self, key: int) -> Any:
        return dict.__getitem__(self, key) if dict.__contains__(self, key) else self.forward[key]

    def get(self, key: int, default: Any = None) -> Any:  # type: ignore[override]
        return self[key] if key in self else default  # noqa: SIM401 -- dict.get would skip the forward table

    def __len__(self) -> int:
        return self.offset + dict.__len__(self)

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(self.forward.values()) + list(dict.values(self))


class feature_storages:
    """Swap :class:`FeatureStorages` in for the recorder's table (kept in ``ctx[key]`` across steps); a
    nested one (the runner's steps, :mod:`vkc.modeltrace.runner_prepare`) numbers its own from ``offset``."""

    def __init__(self, ctx: dict[str, Any], key: str = "feature_storages", offset: int = FEATURE_STORAGE_OFFSET) -> None:
        self.ctx, self.key, self.offset = ctx, key, offset

    def __enter__(self) -> None:
        from vkc.modeltrace.recorder import RECORDER

        self.forward = RECORDER.storages
        own = self.ctx.get(self.key, {})
        for st in own.values():     # a producer named in an earlier step ("event:<i>") is not this step's
            st["producer"] = st["first"]
        RECORDER.storages = FeatureStorages(self.forward, own, self.offset)

    def __exit__(self, *exc: object) -> None:
        from vkc.modeltrace.recorder import RECORDER

        self.ctx[self.key] = {k: dict.__getitem__(RECORDER.storages, k) for k in dict.keys(RECORDER.storages)}
        RECORDER.storages = self.forward
