"""The static rubric on the data cases: good artifacts pass, each bad case fails exactly its rule."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from verify_cases import DATA, bad_cases, build_all

from vkc.verify import CHECK_IDS, check_artifact

BAD = bad_cases()
TRITON_CHECKS = ["json", "schema", "name", "kernel-type", "no-host-code", "triton-imports",
                 "invocation-parses", "model-header", "invocation-launch"]
CUDA_CHECKS = ["json", "schema", "name", "kernel-type", "no-host-code", "cuda-headers",
               "invocation-parses", "model-header", "invocation-launch"]


def test_data_matches_builder() -> None:
    want = build_all(DATA)
    have = {p: p.read_bytes() for p in (DATA / "good").glob("*.json")}
    have.update({p: p.read_bytes() for p in (DATA / "bad").glob("*/*/*.json")})
    if os.environ.get("VKC_UPDATE_GOLDEN") == "1":
        for p in set(have) - set(want):
            p.unlink()
        for p, data in want.items():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        return
    assert sorted(have) == sorted(want), "data cases out of date: rerun with VKC_UPDATE_GOLDEN=1"
    stale = [str(p.relative_to(DATA)) for p in want if have[p] != want[p]]
    assert not stale, f"data cases out of date (VKC_UPDATE_GOLDEN=1 rewrites them): {stale}"


@pytest.mark.parametrize("stem,checks", [("rms_norm_kernel", TRITON_CHECKS), ("silu_and_mul_kernel", CUDA_CHECKS)])
def test_good(stem: str, checks: list[str]) -> None:
    path = DATA / "good" / f"{stem}.json"
    res = check_artifact(path)
    assert [r.check for r in res] == checks
    assert [r.line() for r in res if not r.ok] == []
    assert all(r.artifact == os.fspath(path) for r in res)


@pytest.mark.parametrize("rule,path", BAD, ids=[f"{r}/{p.parent.name}" for r, p in BAD])
def test_bad_case_fails_exactly_its_rule(rule: str, path: Path) -> None:
    res = check_artifact(path)
    failed = [r for r in res if not r.ok]
    assert [r.check for r in failed] == [rule], [r.line() for r in failed]
    reason = failed[0].reason
    assert reason and "\n" not in reason and len(reason) < 400


def test_every_rule_has_a_bad_case() -> None:
    assert sorted({rule for rule, _ in BAD}) == sorted(CHECK_IDS)
