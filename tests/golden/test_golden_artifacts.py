"""Golden artifacts: `vkc collect` output for one kernel per family, byte for byte.

Regenerate with ``VKC_UPDATE_GOLDEN=1``.  The GPU tests (tests/gpu) run these committed
artifacts, so the GPU machine needs neither the vLLM source nor vkc's tracing packages.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vkc.pipeline import collect
from vkc.write import read_artifact, safe_stem

DATA = Path(__file__).resolve().parents[1] / "data" / "golden"
CASES = json.loads((DATA / "cases.json").read_text())
UPDATE = os.environ.get("VKC_UPDATE_GOLDEN") == "1"

pytestmark = pytest.mark.sdist


def golden_path(case: dict) -> Path:
    return DATA / case["model"].replace("/", "__") / f"{safe_stem(case['kernel'])}.json"


def _command(case: dict) -> str:
    cmd = f"vkc collect {case['kernel']} --model {case['model']}"
    return cmd + (f" --workload {case['workload']}" if case["workload"] else "")


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['kernel']}-{c['model'].split('/')[1]}")
def test_artifact_matches_golden(case, tmp_path, vllm_tree):
    res = collect(case["kernel"], model=case["model"], workload=case["workload"], out_dir=tmp_path,
                  command=_command(case))
    got = Path(res.path).read_bytes()
    want = golden_path(case)
    if UPDATE:
        want.parent.mkdir(parents=True, exist_ok=True)
        want.write_bytes(got)
    assert want.is_file(), f"no golden file {want}; run with VKC_UPDATE_GOLDEN=1"
    assert got == want.read_bytes(), f"{case['kernel']} differs from {want}; VKC_UPDATE_GOLDEN=1 regenerates"
    read_artifact(want)  # and it is a valid artifact


def test_every_golden_has_a_case():
    expected = {golden_path(c) for c in CASES}
    present = set(DATA.glob("*/*.json"))
    assert present <= expected, sorted(map(str, present - expected))
