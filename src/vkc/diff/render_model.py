"""The ``--model`` part of ``vkc diff``'s output: JSON and summary lines (the templates use the JSON)."""
from __future__ import annotations

from typing import Any

from vkc.diff.records import ADDED, CHANGED, REMOVED, UNCHANGED, LaunchChange, ModelDiff

__all__ = ["STEP_CLASSES", "change_text", "model_json", "model_summary"]

STEP_CLASSES = (ADDED, REMOVED, CHANGED, UNCHANGED)


def _row(r: LaunchChange) -> dict[str, Any]:
    return {"kind": r.kind, "kernel_kind": r.kernel_kind, "name": r.name, "from_name": r.name_a,
            "to_name": r.name_b, "source": r.source, "calls_from": round(r.calls_a, 3),
            "calls_to": round(r.calls_b, 3), "fields": list(r.fields), "text": change_text(r)}


def change_text(r: LaunchChange) -> str:
    src = f", source {r.source}" if r.source else ""
    renamed = f" (was {r.name_a})" if r.name_a and r.name_b and r.name_a != r.name_b else ""
    if r.kind == ADDED:
        return f"+ {r.name} [{r.kernel_kind}{src}] {r.calls_b:g} calls/step: only the new release's step runs it"
    if r.kind == REMOVED:
        return f"- {r.name} [{r.kernel_kind}{src}] {r.calls_a:g} calls/step: only the old release's step ran it"
    if r.kind == CHANGED:
        return f"~ {r.name}{renamed} [{r.kernel_kind}{src}]: " + "; ".join(r.fields)
    return f"= {r.name}{renamed} [{r.kernel_kind}{src}]"


def model_json(m: ModelDiff) -> dict[str, Any]:
    steps = []
    for s in m.steps:
        counts = {k: sum(r.kind == k for r in s.kernels) for k in STEP_CLASSES}
        src_changed = sorted(r.name for r in s.kernels if r.kind != REMOVED and r.source == "changed")
        steps.append({"step": s.step, "workload": s.workload, "counts": counts,
                      "source_changed": src_changed, "kernels": [_row(r) for r in s.kernels]})
    side = ("from", "to")
    return {"model": m.model, "options": m.options,
            "backends": {side[i]: list(m.backends[i]) for i in (0, 1)},
            "backends_changed": m.backends[0] != m.backends[1],
            "checklist": {side[i]: m.checklist[i] for i in (0, 1)},
            "warnings": {side[i]: list(m.warnings[i]) for i in (0, 1)},
            "importable": {side[i]: dict(m.importable[i]) for i in (0, 1)}, "steps": steps}


def model_summary(m: ModelDiff, labels: tuple[str, str]) -> list[str]:
    j = model_json(m)
    out = [f"model {m.model} ({m.options}):"]
    for i, side in enumerate(("from", "to")):
        if j["checklist"][side] != "known":
            out.append(f"  WARNING: {labels[i]}: model-trace start-up checklist fingerprints unknown "
                       "(UNVERIFIED trace)")
    if j["backends_changed"]:
        out.append(f"  backends changed: {'; '.join(m.backends[0]) or '(none logged)'}  ->  "
                   f"{'; '.join(m.backends[1]) or '(none logged)'}")
    for s in j["steps"]:
        c = s["counts"]
        out.append(f"  {s['step']}: kernels the step runs: {c[ADDED]} added, {c[REMOVED]} removed, "
                   f"{c[CHANGED]} with changed launches, {c[UNCHANGED]} unchanged; "
                   f"{len(s['source_changed'])} of the new step's kernels have changed source")
        out += [f"    {k['text']}" for k in s["kernels"] if k["kind"] != UNCHANGED or k["source"] in ("changed", "moved")]
    return out
