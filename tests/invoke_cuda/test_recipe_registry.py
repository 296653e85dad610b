"""CUDA recipes as core Recipe records: discovery (loud), declared needs, the workload policy,
and a recipe that fails (a reported InvocationError naming it, never a switch to the untraced path)."""
from __future__ import annotations

import dataclasses
import importlib
import textwrap
from pathlib import Path

import pytest
from cases import hand_extraction
from helpers import model

import vkc.invoke.cuda.recipes as recipes_pkg
from vkc.errors import InvocationError, NotApplicableError
from vkc.invoke.core import (
    Family,
    Need,
    Recipe,
    RecipeRegistryError,
    Registry,
    registry,
)
from vkc.invoke.core.dims import ModelDims
from vkc.invoke.cuda import invoke_cuda
from vkc.invoke.cuda.context import Ctx
from vkc.invoke.cuda.plan import Plan
from vkc.invoke.cuda.recipe_path import build_recipe_plan, recipe_template_context
from vkc.invoke.cuda.untraced import evident_phase

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
RECIPES_DIR = Path(recipes_pkg.__file__).parent
GENERIC_FACTS = {"params": [{"type": "float*", "name": "y"}, {"type": "const int", "name": "hidden_size"}],
                 "launch": {"file": "csrc/foo.cu", "line": 9, "wrapper": "foo", "grid": "num_tokens",
                            "block": "256", "smem": "0"}}


def test_every_recipe_module_on_disk_is_registered():
    on_disk = {p.stem for p in RECIPES_DIR.glob("*.py") if not p.stem.startswith("_") and p.stem != "base"}
    assert len(on_disk) >= 11, on_disk
    assert {r.module for r in registry("cuda").recipes()} == on_disk


def test_registered_recipes_are_well_formed():
    for r in registry("cuda").recipes():
        assert r.lang == "cuda" and isinstance(r.family, Family) and callable(r.plan), r
        assert all(k.startswith("csrc/") and ":" in k for k in r.kernels), r.kernels
        assert all(isinstance(n, Need) for n in r.needs)
        if r.template:   # its own program: its module supplies the extra template context
            assert r.template.startswith("vkc.invoke.cuda/")
            assert callable(getattr(importlib.import_module(f"vkc.invoke.cuda.recipes.{r.module}"),
                                    "template_context", None)), r.module


def test_template_without_context_hook_is_reported(vllm_tree):
    r = dataclasses.replace(registry("cuda").find("csrc/layernorm_kernels.cu:rms_norm_kernel"),
                            template="vkc.invoke.cuda/host.cu.j2")
    with pytest.raises(InvocationError) as e:
        recipe_template_context(r, build_recipe_plan(r, _ctx(vllm_tree, "csrc/layernorm_kernels.cu:rms_norm_kernel")))
    assert e.value.exit_code == 9 and "template_context" in e.value.message


def test_static_needs_are_declared():
    needs = {k: r.needs for r in registry("cuda").recipes() for k in r.kernels}
    assert needs["csrc/moe/topk_softmax_kernels.cu:topkGating"] == (Need.MOE,)
    assert needs["csrc/moe/moe_align_sum_kernels.cu:count_and_sort_expert_tokens_kernel"] == (Need.MOE,)
    assert needs["csrc/cache_kernels.cu:concat_and_cache_mla_kernel"] == (Need.MLA,)
    assert needs["csrc/cache_kernels.cu:reshape_and_cache_flash_kernel"] == (Need.ATTENTION,)
    assert needs["csrc/moe/grouped_topk_kernels.cu:grouped_topk_fused_kernel"] == (Need.GROUPED_TOPK,)
    assert needs["csrc/layernorm_kernels.cu:rms_norm_kernel"] == ()


def _write_pkg(root: Path, name: str, modules: dict[str, str]) -> str:
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for mod, text in modules.items():
        (pkg / f"{mod}.py").write_text(textwrap.dedent(text))
    return name


_GOOD = """
    from vkc.invoke.core import Family, Recipe
    RECIPES = (Recipe(lang="cuda", kernels=("csrc/x.cu:k",), family=Family.OTHER, plan=print),)
"""


@pytest.mark.parametrize("case,text,needle", [
    ("unimportable", "import vkc_no_such_module_anywhere\n", "cannot be imported"),
    ("no_recipes", "X = 1\n", "defines no RECIPES"),
    ("duplicate", _GOOD, "claimed by recipes in"),
    ("wrong_lang", _GOOD.replace('lang="cuda", kernels=("csrc/x.cu:k",)', 'lang="triton", kernels=("m:k",)'),
     "a triton recipe in the cuda package"),
])
def test_registry_fails_loudly(tmp_path, monkeypatch, case, text, needle):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _write_pkg(tmp_path, f"vkc_test_recipes_{case}", {"good": _GOOD, "zz_bad": text})
    with pytest.raises(RecipeRegistryError) as e:
        Registry(name, "cuda")
    assert needle in str(e.value)


def test_private_and_base_modules_are_skipped(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _write_pkg(tmp_path, "vkc_test_recipes_skip", {"good": _GOOD, "base": "X = 1\n", "_helpers": "X = 1\n"})
    assert Registry(name, "cuda").kernels() == ("csrc/x.cu:k",)


def _ctx(tree, qualified: str = "csrc/x.cu:k", model_id: str = LLAMA) -> Ctx:
    return Ctx(tree, hand_extraction(qualified), ModelDims.from_config(model(model_id)), "prefill", qualified)


def _recipe(plan, needs=()) -> Recipe:
    return Recipe(lang="cuda", kernels=("csrc/x.cu:k",), family=Family.OTHER, plan=plan, needs=needs,
                  default_workload="prefill", module="fake_family")


def test_recipe_bug_is_an_invocation_error_naming_the_recipe(vllm_tree):
    def broken(ctx: Ctx) -> Plan:
        return {}["no_such_key"]
    with pytest.raises(InvocationError) as e:
        build_recipe_plan(_recipe(broken), _ctx(vllm_tree))
    assert type(e.value) is InvocationError and e.value.exit_code == 9
    assert "fake_family" in e.value.message and "KeyError" in e.value.message and "csrc/x.cu:k" in e.value.message
    assert isinstance(e.value.__cause__, KeyError)


def test_recipe_not_applicable_passes_through(vllm_tree):
    def not_here(ctx: Ctx) -> Plan:
        raise NotApplicableError("k does not apply", hint="use e.g. X")
    with pytest.raises(NotApplicableError) as e:
        build_recipe_plan(_recipe(not_here), _ctx(vllm_tree))
    assert e.value.exit_code == 12 and e.value.message == "k does not apply"


def test_needs_are_checked_before_the_plan_runs(vllm_tree):
    calls = []

    def plan(ctx: Ctx) -> Plan:
        calls.append(ctx)
        raise AssertionError("not reached")
    with pytest.raises(NotApplicableError) as e:
        build_recipe_plan(_recipe(plan, needs=(Need.MOE,)), _ctx(vllm_tree))
    assert e.value.exit_code == 12 and "k is a MoE kernel" in e.value.message and "has no experts" in e.value.message
    assert "e.g." in (e.value.hint or "") and not calls


def test_recipe_returning_no_plan_is_reported(vllm_tree):
    with pytest.raises(InvocationError) as e:
        build_recipe_plan(_recipe(lambda ctx: "not a plan"), _ctx(vllm_tree))
    assert e.value.exit_code == 9 and "not a Plan" in e.value.message


@pytest.mark.parametrize("wrapper,kernel,phase", [
    ("foo", "foo_kernel", None),
    ("paged_attention_decode", "foo_kernel", "decode"),
    ("run", "chunked_prefill_kernel", "prefill"),
    ("prefill_and_decode", "k", None),          # both named: no evident phase
])
def test_evident_phase(wrapper, kernel, phase):
    ex = hand_extraction(f"csrc/foo.cu:{kernel}", {"launch": {"wrapper": wrapper}})
    assert evident_phase(ex) == phase


@pytest.mark.parametrize("wrapper,workload,why", [
    ("foo", "decode", "inferred: no recipe and no evident phase; decode is vkc's default"),
    ("foo_prefill", "prefill", "inferred: the wrapper's launch site is on the prefill path"),
])
def test_untraced_default_workload(vllm_tree, wrapper, workload, why):
    facts = {**GENERIC_FACTS, "launch": {**GENERIC_FACTS["launch"], "wrapper": wrapper}}
    inv = invoke_cuda(vllm_tree, hand_extraction("csrc/foo.cu:foo_kernel", facts), model(LLAMA), None,
                      command="vkc collect foo_kernel", name="foo_kernel")
    assert inv.facts["untraced"] and inv.workload == workload
    assert f"// WORKLOAD: {workload} ({why})" in inv.header.splitlines()
    assert f'"{workload}"' in inv.code           # the RESULT line's workload literal follows


def test_given_workload_is_kept_without_a_recipe(vllm_tree):
    inv = invoke_cuda(vllm_tree, hand_extraction("csrc/foo.cu:foo_kernel", GENERIC_FACTS), model(LLAMA), "prefill",
                      command="vkc", name="foo_kernel")
    assert inv.workload == "prefill" and "// WORKLOAD: prefill (given)" in inv.header.splitlines()


def test_header_is_the_core_format_and_reads_back(vllm_tree):
    import vkc
    from vkc.export.provenance import parse_provenance
    inv = invoke_cuda(vllm_tree, hand_extraction("csrc/foo.cu:foo_kernel", GENERIC_FACTS), model(LLAMA), None,
                      command="vkc collect foo_kernel", name="foo_kernel")
    lines = inv.header.splitlines()
    assert lines[0] == (f"// vkc {vkc.__version__} -- invocation example: CUDA host program for one vLLM kernel "
                        "[untraced/generic: no recipe for this kernel; compile-only quality]")
    assert all(ln.startswith("// ") and ln == ln.rstrip() for ln in lines)
    assert inv.code.startswith(inv.header + '\n#include "foo_kernel.cu"\n')
    prov = parse_provenance("cuda", inv.code)
    assert prov.vkc_version == vkc.__version__ and prov.model == LLAMA and prov.workload == "decode"
    assert prov.regenerate_command == "vkc collect foo_kernel" and prov.kernel_file == "csrc/foo.cu"


def test_dims_are_the_core_record():
    import vkc.invoke.cuda as pkg
    assert not (Path(pkg.__file__).parent / "dims.py").exists()
    assert dataclasses.is_dataclass(ModelDims)
