"""CUDA recipes on other releases (issue 14), on small fixture trees: a moved file, a file cited from
another folder, a changed wrapper line and a changed template.

vLLM 0.25.0 - 0.30.0 keep ``activation_kernels.cu`` (and most of csrc/) under ``csrc/libtorch_stable/``;
0.33.0 (the recipes' release) under ``csrc/``.  Without following the move none of the 22 CUDA recipes
applied there; a recipe whose wrapper line or template changed must refuse (exit 9), never emit an
instantiation it did not check.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from vkc.errors import InvocationError
from vkc.invoke.core.dims import ModelDims
from vkc.invoke.cuda.context import Ctx
from vkc.invoke.cuda.moved import find_moved_file
from vkc.invoke.cuda.recipe_path import build_recipe_plan, recipe_for, recipe_in_tree
from vkc.invoke.cuda.srcref import relocated
from vkc.modelcfg import load_model
from vkc.records import Extraction, Handoff, KernelEntry, SourceTree

OLD = "csrc/activation_kernels.cu:act_and_mul_kernel"
NEW = "csrc/libtorch_stable/activation_kernels.cu:act_and_mul_kernel"

# the lines of silu_and_mul's wrapper the activation recipe copies (0.30.0's file has them verbatim)
_WRAPPER = """\
template <typename scalar_t, typename packed_t, scalar_t (*ACT_FN)(const scalar_t&),
          packed_t (*PACKED_ACT_FN)(const packed_t&), bool act_first, bool use_vec,
          bool use_256b = false, bool HAS_CLAMP = false>
__global__ void act_and_mul_kernel(scalar_t* out, const scalar_t* input, const int d) {}

#define LAUNCH_ACTIVATION_GATE_KERNEL(KERNEL, PACKED_KERNEL, ACT_FIRST)   \\
  int d = input.size(-1) / 2;                                           \\
  int64_t num_tokens = input.numel() / input.size(-1);                  \\
  dim3 grid(num_tokens);                                                \\
  int support_vec = (CUDA_VERSION >= 12090 && cc_major >= 10 && num_tokens > 128) ? \\
      vllm::VecTraits<true>::ARCH_MAX_VEC_SIZE : vllm::VecTraits<false>::ARCH_MAX_VEC_SIZE; \\
  int vec_size = support_vec / input.element_size();                    \\
  const bool use_vec = (d % vec_size == 0);                             \\
  if (use_vec) { dim3 block(std::min(d / vec_size, 1024)); } else { dim3 block(std::min(d, 1024)); }

void silu_and_mul(torch::stable::Tensor& out, torch::stable::Tensor& input) {
  LAUNCH_ACTIVATION_GATE_KERNEL(vllm::silu_kernel, vllm::packed_silu_kernel, true);
}
"""
_TEMPLATE = ("typename scalar_t", "typename packed_t", "scalar_t (*ACT_FN)(const scalar_t&)",
             "packed_t (*PACKED_ACT_FN)(const packed_t&)", "bool act_first", "bool use_vec",
             "bool use_256b = false", "bool HAS_CLAMP = false")


def _tree(root: Path, files: dict[str, str]) -> SourceTree:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return SourceTree(root=root, version="0.30.0", origin=str(root))


def _ctx(tree: SourceTree, qualified: str, template: tuple[str, ...] | None = _TEMPLATE) -> Ctx:
    file, name = qualified.split(":")
    entry = KernelEntry(lang="cuda", name=name, qualname=f"vllm::{name}", file=file, line=4, end_line=4,
                        qualified=qualified)
    handoff = Handoff(leaf_symbols=(f"vllm::{name}",), arg_order=(), grid_expr="", meta_params={}, guards={},
                      smem_formula=None, stride_semantics="elements")
    facts = {} if template is None else {"template_params": list(template)}
    ex = Extraction(kernel=entry, kernel_type="cuda", source_code="// unit\n", handoff=handoff, facts=facts)
    _, moved = recipe_in_tree(tree.root, qualified)
    return Ctx(tree, ex, ModelDims.from_config(load_model("meta-llama/Llama-3.1-8B-Instruct")), "prefill",
               qualified, moved_prefixes=(moved.old_prefix, moved.new_prefix) if moved is not None else None)


def test_a_kernel_in_a_moved_file_gets_the_recipe_and_cites_the_moved_file(tmp_path):
    tree = _tree(tmp_path, {"csrc/libtorch_stable/activation_kernels.cu": _WRAPPER})
    assert recipe_for(NEW) is None
    moved = find_moved_file(tree.root, NEW)
    assert moved is not None and moved.recipe is recipe_for(OLD) and moved.recipe_kernel == OLD
    assert (moved.old_prefix, moved.new_prefix) == ("csrc/", "csrc/libtorch_stable/")
    assert "followed a moved file" in moved.note()
    plan = build_recipe_plan(moved.recipe, _ctx(tree, NEW))
    assert plan.wrapper.startswith("csrc/libtorch_stable/activation_kernels.cu:")
    assert all("csrc/libtorch_stable/activation_kernels.cu:" in s.origin for s in plan.launch_stmts)
    assert plan.template_args[0] == "c10::BFloat16"


def test_a_copy_is_not_a_move_and_another_name_follows_nothing(tmp_path):
    tree = _tree(tmp_path, {"csrc/libtorch_stable/activation_kernels.cu": _WRAPPER,
                            "csrc/activation_kernels.cu": _WRAPPER})
    assert find_moved_file(tree.root, NEW) is None
    assert find_moved_file(tree.root, "csrc/libtorch_stable/other.cu:act_and_mul_kernel") is None
    assert find_moved_file(tree.root, "csrc/libtorch_stable/activation_kernels.cu:other_kernel") is None
    assert find_moved_file(tmp_path, "x/k.cu:k", kernels=("a/k.cu:k", "b/k.cu:k")) is None


def test_a_changed_wrapper_line_refuses_naming_the_files(tmp_path):
    tree = _tree(tmp_path, {"csrc/libtorch_stable/activation_kernels.cu":
                            _WRAPPER.replace("int d = input.size(-1) / 2;", "int d = input.size(-1);")})
    moved = find_moved_file(tree.root, NEW)
    assert moved is not None
    with pytest.raises(InvocationError, match="wrapper code not found in csrc/libtorch_stable/activation_kernels.cu"):
        build_recipe_plan(moved.recipe, _ctx(tree, NEW))


def test_a_changed_template_refuses(tmp_path):
    """0.11.0-style: a template of fewer parameters than the recipe's instantiation has arguments."""
    tree = _tree(tmp_path, {"csrc/libtorch_stable/activation_kernels.cu": _WRAPPER})
    moved = find_moved_file(tree.root, NEW)
    assert moved is not None
    with pytest.raises(InvocationError, match="declares template <typename scalar_t, scalar_t"):
        build_recipe_plan(moved.recipe, _ctx(tree, NEW, template=("typename scalar_t",
                                                                  "scalar_t (*ACT_FN)(const scalar_t&)")))
    # defaulted parameters may be left out; a hand-made extraction (no template read) is not checked
    build_recipe_plan(moved.recipe, _ctx(tree, NEW, template=(*_TEMPLATE[:6], "bool a = 1", "bool b = 0", "int c = 2")))
    build_recipe_plan(moved.recipe, _ctx(tree, NEW, template=None))


def test_a_cited_file_kept_in_another_folder_is_found_once(tmp_path):
    tree = _tree(tmp_path, {"csrc/libtorch_stable/custom_all_reduce.cu": "void f() { int x = 1; }\n",
                            "csrc/custom_all_reduce.cuh": "// kernels\n"})
    assert relocated(tree.root, "csrc/custom_all_reduce.cu") == "csrc/libtorch_stable/custom_all_reduce.cu"
    assert relocated(tree.root, "csrc/custom_all_reduce.cuh") is None          # it is there
    ctx = _ctx(tree, "csrc/custom_all_reduce.cuh:cross_device_reduce_1stage", template=None)
    assert ctx.at("csrc/custom_all_reduce.cu", "int x = 1;") == "csrc/libtorch_stable/custom_all_reduce.cu:1"
    two = _tree(tmp_path / "two", {"csrc/libtorch_stable/custom_all_reduce.cu": "\n", "csrc/rocm/custom_all_reduce.cu": "\n"})
    assert relocated(two.root, "csrc/custom_all_reduce.cu") is None       # two candidates: none


def test_more_launch_arguments_than_the_kernel_takes_refuses(tmp_path):
    """0.25.0-style: ``topkGating`` takes 11 parameters where 0.33.0's recipe passes 13 -- nvcc found no match."""
    tree = _tree(tmp_path, {"csrc/libtorch_stable/activation_kernels.cu": _WRAPPER})
    moved = find_moved_file(tree.root, NEW)
    assert moved is not None
    ctx = _ctx(tree, NEW)
    three = [{"type": "scalar_t*", "name": "out"}, {"type": "const scalar_t*", "name": "input"},
             {"type": "const int", "name": "d"}]
    short = Ctx(ctx.tree, dataclasses.replace(ctx.extraction, facts={**ctx.extraction.facts, "params": three}),
                ctx.dims, ctx.workload, ctx.kernel, moved_prefixes=ctx.moved_prefixes)
    with pytest.raises(InvocationError, match=r"with 6 argument\(s\), but .* takes 3"):
        build_recipe_plan(moved.recipe, short)
