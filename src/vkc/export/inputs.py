"""Read a batch folder: the artifacts and the batch runner's result files (tolerant of their shape).

``DIR/*.json`` holding ``{"name", "kernel": {...}}`` are artifacts.  Beside them:

* ``collect_results.json``: a list (or ``{"results"|"kernels": [...]}``) of
  ``{name, qualified, model, workload, status, error, seconds, path[, handoff]}``;
* ``verify_results.json``: per artifact ``{"artifact"|"path"|"name", "checks": [{check, ok, reason, details}]}``
  as a list, under ``"artifacts"``/``"results"``, or as ``{path: [checks]}``; a flat list of
  CheckResult dicts (``{artifact, check, ok, reason, details}``) works too;
* ``fidelity_results.json``: written by ``vkc fidelity``.

This is what ``vkc collect --all`` (:mod:`vkc.batch`) writes: ``{"kernels": [{name, qualified, lang,
model, workload, status (written | not applicable | failed), error_class, error, seconds, path}]}``
and ``{"artifacts": [{"artifact", "ok", "checks"}]}``; artifacts may sit in ``<model>/<workload>/``
sub-folders.  Artifacts are matched to results by path (the recorded path ends with the
artifact's DIR-relative path), then by kernel name when that is unique.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vkc.errors import UsageError
from vkc.write.names import RESULT_FILES  # one list of the result files vkc writes beside artifacts

OK_STATUSES = ("ok", "wrote", "written", "success", "succeeded", "pass", "passed")
NOT_APPLICABLE_STATUSES = ("not applicable", "not_applicable", "n/a", "skipped")


@dataclass
class ArtifactRecord:
    file: str                      # path relative to DIR (posix)
    name: str
    kernel_type: str
    source_code: str
    invocation_example: str


@dataclass
class BatchDir:
    root: Path
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    collect: list[dict[str, Any]] = field(default_factory=list)
    verify: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # artifact path as recorded -> checks
    verify_options: dict[str, Any] = field(default_factory=dict)            # the options verify ran with
    fidelity: dict[str, Any] | None = None
    unreadable: list[str] = field(default_factory=list)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _as_list(obj: Any, keys: tuple[str, ...]) -> list[Any]:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        for k in keys:
            if isinstance(obj.get(k), list):
                return obj[k]
    return []


def _norm_check(c: dict[str, Any]) -> dict[str, Any]:
    return {"check": str(c.get("check") or c.get("name") or "?"), "ok": bool(c.get("ok")),
            "reason": str(c.get("reason") or ""), "details": c.get("details") or {}}


def _verify_map(obj: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if isinstance(obj, dict) and not any(isinstance(obj.get(k), list) for k in ("artifacts", "results")):
        items = [{"artifact": k, "checks": v} for k, v in obj.items() if isinstance(v, list)]
    else:
        items = _as_list(obj, ("artifacts", "results"))
    for it in items:
        if not isinstance(it, dict):
            continue
        key = it.get("artifact") or it.get("path") or it.get("file") or it.get("name")
        if not key:
            continue
        checks = it.get("checks")
        if isinstance(checks, list):
            out.setdefault(str(key), []).extend(_norm_check(c) for c in checks if isinstance(c, dict))
        elif "check" in it:  # a flat CheckResult dict
            out.setdefault(str(key), []).append(_norm_check(it))
    return out


def _artifact_files(d: Path) -> list[Path]:
    """``*.json`` under DIR (flat or the batch runner's ``<model>/<workload>/`` layout), result files excluded."""
    found = [p for p in d.rglob("*.json") if p.is_file() and p.name not in RESULT_FILES
             and not any(part.startswith(".") for part in p.relative_to(d).parts)]
    return sorted(found, key=lambda p: p.relative_to(d).as_posix())


def load_dir(root: str | os.PathLike[str]) -> BatchDir:
    """All artifacts (sorted by path relative to DIR) and whatever result files exist."""
    d = Path(root)
    if not d.is_dir():
        raise UsageError(f"{os.fspath(root)}: not a folder", hint="give the folder the batch runner wrote")
    bd = BatchDir(root=d)
    for f in _artifact_files(d):
        obj = _load_json(f)
        k = obj.get("kernel") if isinstance(obj, dict) else None
        rel = f.relative_to(d).as_posix()
        if not isinstance(k, dict) or "kernel_type" not in k:
            if obj is None:
                bd.unreadable.append(rel)
            continue
        bd.artifacts.append(ArtifactRecord(rel, str(obj.get("name", f.stem)), str(k.get("kernel_type")),
                                           str(k.get("source_code", "")), str(k.get("invocation_example", ""))))
    bd.collect = [c for c in _as_list(_load_json(d / "collect_results.json"), ("kernels", "results"))
                  if isinstance(c, dict)]
    verify = _load_json(d / "verify_results.json")
    bd.verify = _verify_map(verify)
    options = verify.get("options") if isinstance(verify, dict) else None
    bd.verify_options = options if isinstance(options, dict) else {}
    fid = _load_json(d / "fidelity_results.json")
    bd.fidelity = fid if isinstance(fid, dict) else None
    return bd


def same_file(given: str | None, rel: str) -> bool:
    """Does a path as the batch runner recorded it (absolute, cwd-relative or DIR-relative) name ``rel``?"""
    if not given:
        return False
    g = str(given).replace(os.sep, "/")
    return g == rel or g.endswith("/" + rel)


def collect_for(bd: BatchDir, art: ArtifactRecord) -> dict[str, Any] | None:
    """The collect result whose path names this artifact (else its name/qualified, if unique)."""
    for c in bd.collect:
        if same_file(c.get("path"), art.file):
            return c
    named = [c for c in bd.collect if art.name in (c.get("qualified"), c.get("name"))]
    return named[0] if len(named) == 1 else None


def checks_for(bd: BatchDir, art: ArtifactRecord) -> list[dict[str, Any]]:
    for key, checks in bd.verify.items():
        if same_file(key, art.file):
            return checks
    return bd.verify.get(art.name) or []


def is_ok_status(status: Any) -> bool:
    return str(status or "").lower() in OK_STATUSES


def is_not_applicable(status: Any) -> bool:
    return str(status or "").lower() in NOT_APPLICABLE_STATUSES
