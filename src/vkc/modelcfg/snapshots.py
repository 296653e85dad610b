"""Bundled config.json snapshots (package data under ``snapshots/<org>__<name>.json``).

Each file holds ``model_id``, ``canonical_url``, ``confidence``, the verbatim HF
``config`` and optional ``notes``; they were copied from the project's model research
(shared/models, see its README for where each config came from).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Snapshot:
    model_id: str
    canonical_url: str
    confidence: str
    config: dict[str, Any]
    notes: tuple[str, ...]
    file: str                      # package-relative file name, e.g. "snapshots/openai__gpt-oss-120b.json"

    @property
    def exact(self) -> bool:
        return self.confidence.startswith("exact")


def _dir():
    return resources.files("vkc.modelcfg").joinpath("snapshots")


@cache
def _index() -> dict[str, str]:
    """Lower-cased model id -> snapshot file name."""
    out: dict[str, str] = {}
    for entry in sorted(_dir().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            out[entry.name[:-5].replace("__", "/", 1).lower()] = entry.name
    return out


def bundled_ids() -> tuple[str, ...]:
    """Model ids with a bundled snapshot, sorted."""
    return tuple(sorted(_load(name).model_id for name in _index().values()))


@cache
def _load(name: str) -> Snapshot:
    data = json.loads(_dir().joinpath(name).read_text(encoding="utf-8"))
    return Snapshot(
        model_id=data["model_id"],
        canonical_url=data["canonical_url"],
        confidence=data.get("confidence", ""),
        config=data["config"],
        notes=tuple(data.get("notes", ())),
        file=f"snapshots/{name}",
    )


def load_snapshot(model_id: str) -> Snapshot | None:
    """The bundled snapshot for ``model_id`` (case-insensitive, as the hub is), or None.

    The returned ``config`` is a fresh deep copy; callers may change it.
    """
    name = _index().get(model_id.lower())
    if name is None:
        return None
    snap = _load(name)
    return Snapshot(snap.model_id, snap.canonical_url, snap.confidence,
                    json.loads(json.dumps(snap.config)), snap.notes, snap.file)
