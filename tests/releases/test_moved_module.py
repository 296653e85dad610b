"""A Triton recipe follows its kernel to a moved module (issue 14), on small fixture trees.

vLLM 0.11.0 keeps ``chunked_prefill_paged_decode.py`` under ``vllm/attention/ops/``; 0.33.0 (the
recipes' release) under ``vllm/v1/attention/ops/``.  Without following the move, the spec example
on 0.11.0 was a synthesized grid (1,) launch with exit 0.
"""
from __future__ import annotations

from pathlib import Path

from vkc.invoke.triton.recipes import get_recipe
from vkc.invoke.triton.traced.moved import find_moved, module_in_tree

OLD = "vllm.attention.ops.chunked_prefill_paged_decode:kernel_paged_attention_2d"
NEW = "vllm.v1.attention.ops.chunked_prefill_paged_decode:kernel_paged_attention_2d"


def _tree(root: Path, *modules: str) -> Path:
    for m in modules:
        p = root / (m.replace(".", "/") + ".py")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("import triton\n\n@triton.jit\ndef kernel_paged_attention_2d():\n    pass\n")
    return root


def test_a_kernel_in_a_moved_module_gets_the_recipe_with_an_alias(tmp_path):
    tree = _tree(tmp_path, "vllm.attention.ops.chunked_prefill_paged_decode")
    assert get_recipe(OLD) is None
    moved = find_moved(tree, OLD)
    assert moved is not None
    assert moved.recipe is get_recipe(NEW)
    assert moved.recipe_kernel == NEW
    assert moved.aliases == (("vllm.v1.attention.ops.chunked_prefill_paged_decode",
                              "vllm.attention.ops.chunked_prefill_paged_decode"),)
    assert "followed a moved module" in moved.note()


def test_a_copy_is_not_a_move(tmp_path):
    """Both modules in the tree: the recipe's own module is there, so the other file gets none."""
    tree = _tree(tmp_path, "vllm.attention.ops.chunked_prefill_paged_decode",
                 "vllm.v1.attention.ops.chunked_prefill_paged_decode")
    assert module_in_tree(tree, "vllm.v1.attention.ops.chunked_prefill_paged_decode")
    assert find_moved(tree, OLD) is None


def test_another_function_or_file_name_follows_nothing(tmp_path):
    tree = _tree(tmp_path, "vllm.attention.ops.paged_decode")
    assert find_moved(tree, "vllm.attention.ops.paged_decode:kernel_paged_attention_2d") is None
    assert find_moved(tree, "vllm.attention.ops.chunked_prefill_paged_decode:other_kernel") is None


def test_two_candidates_follow_nothing(tmp_path):
    kernels = ("a.x.mod:k", "b.y.mod:k")
    assert find_moved(tmp_path, "c.mod:k", kernels=kernels) is None
