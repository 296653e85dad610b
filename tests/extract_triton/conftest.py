"""Helpers for the Triton extractor tests."""
from __future__ import annotations

import json
from pathlib import Path

from vkc.records import KernelEntry, LaunchSite

DATA = Path(__file__).parents[1] / "data" / "extract_triton"
BENCH = Path("/work/shared/bench/kernels.json")


def bench_kernels() -> list[dict]:
    """The "triton" list of the benchmark set (a copy lives next to the tests)."""
    src = BENCH if BENCH.is_file() else DATA / "bench_triton.json"
    data = json.loads(src.read_text())
    return data["triton"] if isinstance(data, dict) else data


def entry_for(k: dict, launch_text: str = "") -> KernelEntry:
    module = k["file"][:-3].replace("/", ".")
    sites = (LaunchSite(k["file"], 1, None, "grid", launch_text),) if launch_text else ()
    return KernelEntry("triton", k["name"], k["qualname"], k["file"], k["line"], k["line"], module=module,
                       launch_sites=sites, qualified=f"{module}:{k['qualname']}")
