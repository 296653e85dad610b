"""Golden artifacts: `vkc collect` output for one kernel per family, byte for byte.

Regenerate with ``VKC_UPDATE_GOLDEN=1``.  The GPU tests (tests/gpu) run these committed
artifacts, so the GPU machine needs neither the vLLM source nor vkc's tracing packages.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import vkc
from vkc.naming import safe_stem
from vkc.write import read_artifact

DATA = Path(__file__).resolve().parents[1] / "data" / "golden"
CASES = json.loads((DATA / "cases.json").read_text())
pytestmark = pytest.mark.sdist


def golden_path(case: dict) -> Path:
    return DATA / case["model"].replace("/", "__") / f"{safe_stem(case['kernel'])}.json"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['kernel']}-{c['model'].split('/')[1]}")
def test_artifact_matches_golden(case, tmp_path, vllm_tree, golden):
    """The public API (what ``vkc collect`` calls) writes the golden artifact byte for byte; the
    header's COMMAND line is ``vkc collect KERNEL --model M [--workload W]`` (the default out dir)."""
    (tmp_path / "kernels_out").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        res = vkc.collect(case["kernel"], model=case["model"], workload=case["workload"])
    golden(golden_path(case), (tmp_path / res.path).read_bytes())
    read_artifact(golden_path(case))  # and it is a valid artifact


def test_every_golden_has_a_case():
    expected = {golden_path(c) for c in CASES}
    present = set(DATA.glob("*/*.json"))
    assert present <= expected, sorted(map(str, present - expected))
