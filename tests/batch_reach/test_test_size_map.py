"""vkc.batch.testsize: the bundled model whose dimensions size a test-reached kernel's tests best,
and how ``collect --all`` uses it (plan, fallback, summary)."""
from __future__ import annotations

import importlib

import pytest

from vkc.batch.plan import plan_jobs
from vkc.batch.testsize import model_map_from_tests, score, size_names
from vkc.invoke.triton.testtraced.attempt import model_dims
from vkc.modelcfg import DEFAULT_MODEL, load_model_cached
from vkc.testtrace.records import VllmTest

ca = importlib.import_module("vkc.batch.collect_all")
B = "Qwen/Qwen3-30B-A3B"
CACHE = "vllm.v1.attention.ops.triton_reshape_and_cache_flash:reshape_and_cache_kernel_flash"
MOE_CUDA = "csrc/moe/moe_align_sum_kernels.cu:moe_sum_scalar_kernel"


@pytest.fixture(scope="module")
def vllm_index(vllm_tree):
    from vkc.index import build_index
    return build_index(vllm_tree)


def _t(file: str, *params: tuple[str, tuple[str, ...]]) -> VllmTest:
    return VllmTest(file, "test_x", 1, tuple(params), ())


def test_size_names_and_scores():
    moe = _t("tests/kernels/moe/test_x.py", ("m,n,k,e,topk", ("(1, 2, 3, 4, 5)",)), ("dtype", ("torch.bfloat16",)))
    assert size_names([moe]) == {"e", "topk"}
    # top_k outside an MoE test is a sampler's setting, not the model's experts per token
    sampler = _t("tests/v1/sample/test_x.py", ("top_k", ("1", "8")), ("num_heads", ("8",)))
    assert size_names([sampler]) == {"num_heads"}
    assert size_names([_t("tests/v1/test_x.py", ("E", ("4",)), ("top_k", ("2",)))]) == {"E", "top_k"}
    dense, qwen = (model_dims(load_model_cached(m)) for m in (DEFAULT_MODEL, B))
    assert score({"e", "topk"}, dense) == 0 and score({"e", "topk"}, qwen) == 2
    assert score({"num_heads", "e"}, dense) == 1


def test_plan_takes_the_model_of_the_test_size_map(vllm_index):
    plain = plan_jobs(vllm_index, lang="cuda", out_dir="out")
    jobs = plan_jobs(vllm_index, lang="cuda", out_dir="out", test_models={MOE_CUDA: B})
    assert len(jobs) == len(plain)
    for j, p in zip(jobs, plain):
        if j.qualified == MOE_CUDA:
            assert (j.model, j.workload, j.test_model, j.reach) == (B, None, B, "")
            assert j.command == f"vkc collect {j.name} --model {B} --out out" and j.fallback == p
        else:
            assert j == p
    # the reach map wins over it; an explicit --model switches both off
    both = plan_jobs(vllm_index, lang="triton", reach={CACHE: (B, "decode")}, test_models={CACHE: "x/y"})
    j = next(j for j in both if j.qualified == CACHE)
    assert (j.reach, j.test_model) == (f"{B} decode", "")
    assert plan_jobs(vllm_index, lang="cuda", models=[DEFAULT_MODEL], test_models={MOE_CUDA: B}) == \
        plan_jobs(vllm_index, lang="cuda", models=[DEFAULT_MODEL])


def test_a_failing_test_size_job_falls_back_loudly(monkeypatch, capsys, vllm_index):
    job = next(j for j in plan_jobs(vllm_index, lang="cuda", test_models={MOE_CUDA: B}) if j.test_model)
    monkeypatch.setattr(ca, "_collect_one", lambda state, j: (
        {"status": ca.FAILED, "error_class": "InvocationError", "error": "no"} if j.model == B
        else {"status": ca.WRITTEN, "path": "p", "line": "WROTE p", "model": DEFAULT_MODEL}))
    got = ca._run_job({}, job)
    assert got["status"] == ca.WRITTEN and got["model"] == DEFAULT_MODEL and not got.get("test_model")
    assert got["test_model_fallback"] == f"{B}: InvocationError: no" and not got.get("reach_fallback")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "test-size map" in err[0] and err[0].startswith("vkc: warning: ")
    monkeypatch.setattr(ca, "_collect_one", lambda state, j: {"status": ca.WRITTEN, "model": j.model})
    ok = ca._run_job({}, job)
    assert ok["test_model"] == B and ok["reach"] is None
    rec = ca._record(job, ca.Outcome(value=dict(ok, lang="cuda")), DEFAULT_MODEL)
    summary = ca.summarise([rec])
    assert summary["test_model_used"] == 1 and summary["test_model_fell_back"] == 0
    rep = ca.BatchReport(records=[rec], seconds=1.0, results_path="o/collect_results.json", jobs=1, summary=summary)
    assert "vkc:   test-size map: 1 kernels took their model from their tests' size parameters\n" \
        in ca.format_summary(rep)


@pytest.mark.sdist
def test_the_map_of_the_real_tree(vllm_index, monkeypatch):
    monkeypatch.setenv("VKC_TEST_TRACE", "0")
    assert model_map_from_tests(vllm_index) == {}       # the test-traced source off: nothing moves
    monkeypatch.setenv("VKC_TEST_TRACE", "1")
    got = model_map_from_tests(vllm_index)
    # MoE tests (num_experts / e / topk) go to the MoE default, MLA cache tests (kv_lora_rank) to DeepSeek
    assert got[MOE_CUDA] == B
    assert got["csrc/cache_kernels.cu:concat_and_cache_ds_mla_kernel"] == "deepseek-ai/DeepSeek-V3"
    # a sampler's top_k is not the experts per token: the rejection sampler stays at the default model
    assert not any(q.startswith("vllm.v1.worker.gpu.spec_decode.rejection_sampler_utils:") for q in got)
    # the default model scores at least as high for the rest: most kernels stay put
    assert 20 <= len(got) <= 120
    assert model_map_from_tests(vllm_index, skip=[MOE_CUDA]).get(MOE_CUDA) is None
