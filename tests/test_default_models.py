"""No --model: a kernel vLLM does not launch for the default model is collected at the first
of ``DEFAULT_MODELS`` it applies to; an explicit --model that does not apply still fails."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vkc.errors import NotApplicableError
from vkc.modelcfg import DEFAULT_MODEL, DEFAULT_MODELS, bundled_ids
from vkc.pipeline import collect


def test_default_models_are_bundled():
    assert DEFAULT_MODELS[0] == DEFAULT_MODEL
    assert set(DEFAULT_MODELS) <= set(bundled_ids())


def test_moe_kernel_without_model_uses_a_moe_default(vllm_tree, tmp_path):
    res = collect("csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel", out_dir=tmp_path,
                  vllm_path=vllm_tree.root)
    inv = json.loads(Path(res.path).read_text())["kernel"]["invocation_example"]
    assert "Qwen/Qwen3-30B-A3B" in inv and DEFAULT_MODEL not in inv


def test_dense_kernel_without_model_keeps_the_default(vllm_tree, tmp_path):
    res = collect("rms_norm_kernel", out_dir=tmp_path, vllm_path=vllm_tree.root)
    assert DEFAULT_MODEL in json.loads(Path(res.path).read_text())["kernel"]["invocation_example"]


def test_explicit_model_that_does_not_apply_still_fails(vllm_tree, tmp_path):
    with pytest.raises(NotApplicableError):
        collect("csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel", model=DEFAULT_MODEL,
                out_dir=tmp_path, vllm_path=vllm_tree.root)
    assert not list(tmp_path.iterdir())
