"""vkc.batch.plan: names, file stems and folders of a --all run (no workers)."""
from __future__ import annotations

from pathlib import Path

import pytest

from vkc.batch.collect_all import summarise
from vkc.batch.plan import collect_name, model_slug, plan_jobs, regen_command
from vkc.errors import UsageError
from vkc.write import safe_stem

TREE = Path(__file__).resolve().parents[1] / "data" / "batch" / "tree"


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    import os

    from vkc.index import build_index
    from vkc.source import resolve_source
    old = os.environ.get("VKC_CACHE_DIR")
    os.environ["VKC_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    try:
        return build_index(resolve_source(str(TREE)), use_cache=False)
    finally:
        if old is None:
            os.environ.pop("VKC_CACHE_DIR")
        else:
            os.environ["VKC_CACHE_DIR"] = old


def test_names_bare_when_unique_else_qualified(index):
    names = {k.qualified: collect_name(index, k) for k in index.kernels}
    assert names["vllm.ops.a:add_one_kernel"] == "add_one_kernel"
    assert names["csrc/tiny.cu:tiny_scale_kernel"] == "tiny_scale_kernel"
    assert names["vllm.ops.a:dup_kernel"] == "vllm.ops.a:dup_kernel"
    assert names["vllm.ops.b:dup_kernel"] == "vllm.ops.b:dup_kernel"
    stems = [safe_stem(n) for n in names.values()]
    assert len(set(stems)) == len(stems)


def test_flat_plan(index):
    jobs = plan_jobs(index, out_dir="o")
    assert [j.order for j in jobs] == list(range(len(jobs)))
    assert {j.out_dir for j in jobs} == {"o"} and {(j.model, j.workload) for j in jobs} == {(None, None)}
    assert [j.qualified for j in jobs] == sorted((k.qualified for k in index.kernels if k.role == "entry"),
                                                 key=lambda q: (not q.startswith("csrc"), q))
    assert [j.lang for j in plan_jobs(index, lang="cuda")] == ["cuda"] * 3
    j = next(j for j in jobs if j.qualified == "vllm.ops.a:dup_kernel")
    assert j.command == "vkc collect vllm.ops.a:dup_kernel --out o"


def test_nested_plan(index):
    jobs = plan_jobs(index, lang="triton", models=["org/m", "org/m", "/x/config.json"],
                     workloads=["decode", "prefill"], out_dir="o/", vllm_path="/t")
    dirs = sorted({j.out_dir for j in jobs})
    slug = model_slug("/x/config.json")
    assert slug.startswith("local-x-")
    assert dirs == sorted(f"o/{m}/{w}" for m in ("org--m", slug) for w in ("decode", "prefill"))
    assert len(jobs) == 4 * 4
    j = next(j for j in jobs if j.out_dir == "o/org--m/prefill" and j.name == "add_one_kernel")
    assert j.command == ("vkc collect add_one_kernel --model org/m --workload prefill --vllm /t "
                         "--out o/org--m/prefill")
    one_model = plan_jobs(index, lang="cuda", workloads=["decode", "prefill"],
                          default_model="meta-llama/Llama-3.1-8B-Instruct")
    assert {j.out_dir for j in one_model} == {"kernels_out/meta-llama--Llama-3.1-8B-Instruct/decode",
                                              "kernels_out/meta-llama--Llama-3.1-8B-Instruct/prefill"}


def test_bad_plan_arguments(index):
    with pytest.raises(UsageError):
        plan_jobs(index, workloads=["train"])
    with pytest.raises(UsageError):
        plan_jobs(index, lang="rocm")


def test_slugs_and_command():
    assert model_slug("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama--Llama-3.1-8B-Instruct"
    assert model_slug("weird name/ok") == "weird_name--ok"
    assert regen_command("k", model=None, workload=None, out_dir="kernels_out", vllm_path=None,
                         vllm_version=None) == "vkc collect k"


def test_summarise_counts_by_class():
    recs = [{"status": "written", "error_class": None, "lang": "cuda", "invocation_mode": "recipe"},
            {"status": "failed", "error_class": "ExtractionError"},
            {"status": "failed", "error_class": "ExtractionError"}, {"status": "failed", "error_class": "Timeout"},
            {"status": "not applicable", "error_class": "NotApplicableError"}]
    s = summarise(recs)
    assert (s["total"], s["written"], s["failed"], s["not_applicable"]) == (5, 1, 3, 1)
    assert s["by_class"] == {"failed": {"ExtractionError": 2, "Timeout": 1},
                             "not_applicable": {"NotApplicableError": 1}}
    assert s["by_invocation_mode"] == {"cuda:recipe": 1}
