"""The start-up checklist: fingerprints of the vLLM code it mirrors, known for 0.33.0."""
from __future__ import annotations

import shutil

import pytest

from vkc.modeltrace.checklist import STEPS, check_tree, fingerprints
from vkc.modeltrace.opschema import faked_ops, parse_schemas

pytestmark = pytest.mark.sdist


def test_0_33_0_is_known(vllm_tree):
    status, warnings, fps = check_tree(vllm_tree.root, vllm_tree.version)
    assert status == "known" and warnings == ()
    assert set(fps) == {s.id for s in STEPS} and all(fps.values())


def _copy_mirrored(src, dst):
    for s in STEPS:
        rel = s.mirrors.split(": ")[0]
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, dst / rel)


def test_changed_worker_start_up_is_a_loud_warning(vllm_tree, tmp_path):
    _copy_mirrored(vllm_tree.root, tmp_path)
    wb = tmp_path / "vllm/v1/worker/worker_base.py"
    text = wb.read_text()
    assert "ir_op_priority.set_default()" in text
    wb.write_text(text.replace("ir_op_priority.set_default()", "ir_op_priority.set_default(strict=True)"))
    status, warnings, fps = check_tree(tmp_path, "0.34.0")
    assert status == "unknown"
    assert len(warnings) == 1 and "UNVERIFIED" in warnings[0] and "ir-op-priority" in warnings[0]
    assert fps["ir-op-priority"] != fingerprints(vllm_tree.root)["ir-op-priority"]


def test_schemas_parse_from_the_bindings(vllm_tree):
    schemas = parse_schemas(vllm_tree.root)
    names = {f"{ns}::{s.split('(')[0]}" for ns, s in schemas}
    assert len(schemas) >= 150
    assert {"_C::rms_norm", "_C::fused_add_rms_norm", "_moe_C::topk_softmax", "_C_cache_ops::reshape_and_cache_flash"} <= names
    assert "_moe_C::moe_wna16_marlin_gemm" in faked_ops(vllm_tree.root)
