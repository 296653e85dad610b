"""KernelEntry <-> JSON-ready dicts (the cache file and ``vkc list --json``)."""
from __future__ import annotations

from typing import Any

from vkc.records import KernelEntry, LaunchSite


def site_to_dict(s: LaunchSite) -> dict[str, Any]:
    return {"file": s.file, "line": s.line, "wrapper": s.wrapper, "form": s.form, "text": s.text}


def entry_to_dict(e: KernelEntry) -> dict[str, Any]:
    """All KernelEntry fields, in declaration order, launch sites as objects; ``platform_note``
    only when set (older readers and files without it stay compatible)."""
    d = {
        "lang": e.lang,
        "name": e.name,
        "qualname": e.qualname,
        "file": e.file,
        "line": e.line,
        "end_line": e.end_line,
        "module": e.module,
        "role": e.role,
        "decorators": list(e.decorators),
        "template_params": list(e.template_params),
        "rocm_only": e.rocm_only,
        "launch_sites": [site_to_dict(s) for s in e.launch_sites],
        "qualified": e.qualified,
    }
    if e.platform_note:
        d["platform_note"] = e.platform_note
    return d


def entry_from_dict(d: dict[str, Any]) -> KernelEntry:
    return KernelEntry(
        lang=d["lang"],
        name=d["name"],
        qualname=d["qualname"],
        file=d["file"],
        line=int(d["line"]),
        end_line=int(d["end_line"]),
        module=d["module"],
        role=d["role"],
        decorators=tuple(d["decorators"]),
        template_params=tuple(d["template_params"]),
        rocm_only=bool(d["rocm_only"]),
        launch_sites=tuple(LaunchSite(**s) for s in d["launch_sites"]),
        qualified=d["qualified"],
        platform_note=str(d.get("platform_note", "")),
    )
