"""The invocation core: registry loudness, the workload policy, ModelDims."""
from __future__ import annotations

import sys
import textwrap

import pytest

from vkc.errors import InvocationError, NotApplicableError, UsageError
from vkc.invoke.core import Family, ModelDims, Need, Recipe, RecipeRegistryError, Registry, choose_workload
from vkc.modelcfg import load_model


def _pkg(tmp_path, name: str, modules: dict[str, str]) -> str:
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for mod, text in modules.items():
        (root / f"{mod}.py").write_text(textwrap.dedent(text))
    sys.path.insert(0, str(tmp_path))
    return name


_ONE = """
from vkc.invoke.core import Recipe
RECIPES = (Recipe(lang="cuda", kernels=("csrc/a.cu:{k}",), family="norms", plan=None),)
"""


def test_registry_discovers_every_module(tmp_path):
    pkg = _pkg(tmp_path, "vkc_rec_ok", {"a": _ONE.format(k="x"), "b": _ONE.format(k="y"), "_private": "X = 1"})
    reg = Registry(pkg, "cuda")
    assert reg.kernels() == ("csrc/a.cu:x", "csrc/a.cu:y")
    r = reg.find("csrc/a.cu:x@12")
    assert r is not None and r.module == "a" and r.family is Family.NORM


@pytest.mark.parametrize("modules, needle", [
    ({"a": _ONE.format(k="x"), "b": _ONE.format(k="x")}, "claimed by recipes in a and b"),
    ({"a": "KERNELS = ('m:k',)\n"}, "defines no RECIPES"),
    ({"a": "import vkc_no_such_module_anywhere\n"}, "cannot be imported"),
    ({"a": "RECIPES = ('not a recipe',)\n"}, "not a Recipe"),
])
def test_registry_fails_loudly(tmp_path, modules, needle):
    pkg = _pkg(tmp_path, f"vkc_rec_bad_{abs(hash(needle)) % 10**6}", modules)
    with pytest.raises(RecipeRegistryError, match=needle):
        Registry(pkg, "cuda")


def test_recipe_rejects_bad_workloads():
    with pytest.raises(ValueError):
        Recipe(lang="cuda", kernels=("k",), family=Family.NORM, plan=None, workloads=("decode",),
               default_workload="prefill")
    with pytest.raises(ValueError):
        Recipe(lang="cuda", kernels=("k",), family=Family.NORM, plan=None, workloads=("train",))


def test_family_aliases():
    assert Family.parse("norms") is Family.NORM
    assert Family.parse("sampling") is Family.SAMPLER
    assert Family.parse("mamba") is Family.SSM
    with pytest.raises(ValueError):
        Family.parse("nope")


def test_policy_one_rule_for_both_languages():
    decode_only = Recipe(lang="triton", kernels=("m:k",), family=Family.ATTENTION, plan=None,
                         workloads=("decode",), default_workload="decode")
    assert choose_workload("prefill", None, "m:k") == ("prefill", "given")
    assert choose_workload(None, decode_only, "m:k")[0] == "decode"
    assert choose_workload(None, None, "m:k", wrapper_phase="prefill")[0] == "prefill"
    wl, why = choose_workload(None, None, "m:k")
    assert wl == "decode" and "default" in why
    with pytest.raises(NotApplicableError) as e:
        choose_workload("prefill", decode_only, "m:k")
    assert e.value.exit_code == 12 and "--workload decode" in str(e.value)
    with pytest.raises(UsageError) as u:
        choose_workload("train", None, "m:k")
    assert u.value.exit_code == 2


def test_model_dims_explicit_head_dim_wins():
    d = ModelDims.from_config(load_model("openai/gpt-oss-120b"))
    assert (d.h_q, d.h_kv, d.head_dim, d.hidden) == (64, 8, 64, 2880)
    assert any("explicit head_dim kept" in w for w in d.warnings)


def test_model_dims_needs():
    dense = ModelDims.from_config(load_model("meta-llama/Llama-3.1-8B-Instruct"))
    moe = ModelDims.from_config(load_model("Qwen/Qwen3-30B-A3B"))
    moe.require(Need.MOE, "k")
    dense.require(Need.ATTENTION, "k")
    for need in (Need.MOE, Need.MLA, Need.SSM):
        with pytest.raises(NotApplicableError) as e:
            dense.require(need, "k")
        assert e.value.exit_code == 12 and e.value.hint


def test_model_dims_rejects_inconsistent_heads():
    import dataclasses
    cfg = dataclasses.replace(load_model("meta-llama/Llama-3.1-8B-Instruct"), num_key_value_heads=5)
    with pytest.raises(InvocationError, match="not a multiple"):
        ModelDims.from_config(cfg)
