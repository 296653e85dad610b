"""Helpers for the Triton extractor tests."""
from __future__ import annotations

import json
from pathlib import Path

from vkc.records import KernelEntry, LaunchSite

DATA = Path(__file__).parents[1] / "data" / "extract_triton"
# the shared benchmark set, beside the repository (``../shared`` from its root), when present
SHARED_BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "bench" / "kernels.json"
BENCH_FIELDS = ("name", "qualname", "file", "line")


def bench_kernels() -> list[dict]:
    """The "triton" list of the benchmark set: the copy kept in tests/data (the fields the tests
    use; ``test_bench_copy_matches_shared`` keeps it in step with the shared set)."""
    data = json.loads((DATA / "bench_triton.json").read_text())
    return data["triton"] if isinstance(data, dict) else data


def entry_for(k: dict, launch_text: str = "") -> KernelEntry:
    module = k["file"][:-3].replace("/", ".")
    sites = (LaunchSite(k["file"], 1, None, "grid", launch_text),) if launch_text else ()
    return KernelEntry("triton", k["name"], k["qualname"], k["file"], k["line"], k["line"], module=module,
                       launch_sites=sites, qualified=f"{module}:{k['qualname']}")
