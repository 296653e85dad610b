"""The sampler feature's checklist steps: fingerprinted against vLLM 0.33.0's source."""
from __future__ import annotations

import shutil

import pytest

from vkc.modeltrace.checklist import FEATURE_STEPS, STEPS, check_features, check_tree

pytestmark = pytest.mark.sdist


def test_0_33_0_sampler_steps_are_known(vllm_tree):
    status, warnings, fps = check_features(vllm_tree.root, vllm_tree.version, ("sampler",), "known")
    assert status == "known" and warnings == ()
    assert set(fps) == {s.id for s in FEATURE_STEPS["sampler"]} and all(fps.values())
    # the plain checklist does not grow: traces without features keep their status
    assert check_tree(vllm_tree.root, vllm_tree.version)[0] == "known"
    assert not {s.id for s in STEPS} & set(fps)


def test_changed_sampler_code_is_a_loud_warning(vllm_tree, tmp_path):
    for s in FEATURE_STEPS["sampler"]:
        rel = s.mirrors.split(": ")[0]
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(vllm_tree.root / rel, tmp_path / rel)
    bu = tmp_path / "vllm/v1/worker/gpu/buffer_utils.py"
    text = bu.read_text()
    assert "pin_memory=True" in text
    bu.write_text(text.replace("pin_memory=True", "pin_memory=False", 1))
    status, warnings, _fps = check_features(tmp_path, "0.34.0", ("sampler",), "known")
    assert status == "unknown" and len(warnings) == 1
    assert "UNVERIFIED" in warnings[0] and "sampler-uva" in warnings[0] and "sampler-init" not in warnings[0]
