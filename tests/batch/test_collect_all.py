"""``vkc collect --all`` over the small fixture tree tests/data/batch/tree.

The tree has: a unique Triton kernel (add_one_kernel), an ambiguous bare name
(dup_kernel in vllm.ops.a and vllm.ops.b), a Triton kernel whose extraction fails
(broken_kernel), a plain CUDA kernel (tiny_scale_kernel), a MoE CUDA kernel that does
not apply to the default dense model (without --model vkc moves on to a MoE default, whose
recipe then finds the toy wrapper lacking: failed; with an explicit dense model: not
applicable), and a ROCm-only kernel.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vkc.write import read_artifact

DATA = Path(__file__).resolve().parents[1] / "data" / "batch"
TREE = str(DATA / "tree")
EXPECTED_FILES = {"add_one_kernel.json", "tiny_scale_kernel.json", "vllm.ops.a--dup_kernel.json",
                  "vllm.ops.b--dup_kernel.json"}
EXPECTED_STATUS = {
    "csrc/moe/moe_align_sum_kernels.cu:moe_align_block_size_kernel": ("failed", "InvocationError"),
    "csrc/rocm/tiny_rocm.cu:tiny_rocm_kernel": ("not applicable", "RocmOnly"),
    "csrc/tiny.cu:tiny_scale_kernel": ("written", None),
    "vllm.ops.a:add_one_kernel": ("written", None),
    "vllm.ops.a:broken_kernel": ("failed", "ExtractionError"),
    "vllm.ops.a:dup_kernel": ("written", None),
    "vllm.ops.b:dup_kernel": ("written", None),
}


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    e = dict(os.environ)
    e.pop("VKC_DEBUG", None)
    e["VKC_CACHE_DIR"] = str(tmp_path_factory.mktemp("vkc-cache"))  # the fixture's own index cache
    e["HF_HUB_OFFLINE"] = "1"
    return e


def vkc(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vkc", *args], check=False, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def start(*args: str, cwd: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vkc", *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory, env):
    cwd = tmp_path_factory.mktemp("flat")
    p = vkc("collect", "--all", "--vllm", TREE, "--jobs", "2", "--out", "out", cwd=cwd, env=env)
    return cwd, p


def test_all_writes_every_applicable_kernel(flat_run):
    cwd, p = flat_run
    out = cwd / "out"
    files = {f.name for f in out.iterdir() if not f.name.startswith(".")}
    assert files == EXPECTED_FILES | {"collect_results.json"}, p.stderr
    for name in EXPECTED_FILES:
        obj = read_artifact(out / name)          # schema-valid, stem matches the name
        assert obj["name"] in ("add_one_kernel", "tiny_scale_kernel", "vllm.ops.a:dup_kernel",
                               "vllm.ops.b:dup_kernel")
    assert not [f for f in out.iterdir() if f.name.endswith(".tmp")]


def test_all_stdout_summary_and_exit_code(flat_run):
    _, p = flat_run
    assert p.returncode == 1, p.stderr           # broken_kernel failed
    wrote = p.stdout.splitlines()
    assert len(wrote) == len(EXPECTED_FILES) and all(w.startswith("WROTE out/") for w in wrote)
    assert {w.split()[1] for w in wrote} == {f"out/{f}" for f in EXPECTED_FILES}
    assert "7 kernel runs" in p.stderr
    assert "5 written" not in p.stderr and "4 written, 1 not applicable, 2 failed" in p.stderr
    assert "failed: ExtractionError 1, InvocationError 1" in p.stderr
    assert "not applicable: RocmOnly 1" in p.stderr
    assert "broken_kernel: ExtractionError: unresolved name `MISSING_GLOBAL`" in p.stderr
    assert "Traceback" not in p.stderr


def test_all_results_json(flat_run):
    cwd, _ = flat_run
    res = json.loads((cwd / "out" / "collect_results.json").read_text())
    assert res["layout"] == "flat" and res["jobs"] == 2
    assert res["summary"]["total"] == 7 and res["summary"]["failed"] == 2
    got = {k["qualified"]: (k["status"], k["error_class"]) for k in res["kernels"]}
    assert got == EXPECTED_STATUS
    assert [k["qualified"] for k in res["kernels"]] == sorted(got, key=lambda q: (not q.startswith("csrc"), q))
    for k in res["kernels"]:
        assert set(k) == {"name", "qualified", "lang", "model", "workload", "status", "error_class", "error",
                          "seconds", "path", "invocation_mode", "invocation_source", "model_accurate",
                          "reach", "reach_fallback", "test_model", "test_model_fallback", "reference_source"}
        if k["status"] == "written":
            assert k["invocation_mode"] in ("recipe", "synthesized", "model-traced") and k["invocation_source"]
        assert k["model"] == "meta-llama/Llama-3.1-8B-Instruct" and k["workload"] is None
        assert (k["path"] is not None) == (k["status"] == "written")
        assert (k["error"] is None) == (k["status"] == "written")
    names = {k["qualified"]: k["name"] for k in res["kernels"]}
    assert names["vllm.ops.a:add_one_kernel"] == "add_one_kernel"        # unique: bare name
    assert names["vllm.ops.a:dup_kernel"] == "vllm.ops.a:dup_kernel"     # ambiguous: qualified


def test_all_artifact_equals_single_collect(flat_run, env, tmp_path):
    """Same bytes as ``vkc collect NAME`` with the same flags (the header's command included)."""
    cwd, _ = flat_run
    for name, stem in (("vllm.ops.b:dup_kernel", "vllm.ops.b--dup_kernel"), ("tiny_scale_kernel", "tiny_scale_kernel")):
        p = vkc("collect", name, "--vllm", TREE, "--out", "out", cwd=tmp_path, env=env)
        assert p.returncode == 0, p.stderr
        assert (tmp_path / "out" / f"{stem}.json").read_bytes() == (cwd / "out" / f"{stem}.json").read_bytes()


def test_all_no_failures_exit_zero_and_nested_layout(tmp_path, env):
    """Two models, one workload: DIR/<model-slug>/<workload>/; only not-applicable: exit 0."""
    p = vkc("collect", "--all", "--type", "cuda", "--vllm", TREE, "--jobs", "2", "--out", "o",
            "--model", "meta-llama/Llama-3.1-8B-Instruct", "--model", "Qwen/Qwen3-8B",
            "--workload", "decode", cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stderr
    files = sorted(str(f.relative_to(tmp_path / "o")) for f in (tmp_path / "o").rglob("*.json"))
    assert files == ["Qwen--Qwen3-8B/decode/tiny_scale_kernel.json", "collect_results.json",
                     "meta-llama--Llama-3.1-8B-Instruct/decode/tiny_scale_kernel.json"]
    res = json.loads((tmp_path / "o" / "collect_results.json").read_text())
    assert res["layout"] == "nested" and res["summary"]["total"] == 6 and res["summary"]["failed"] == 0
    assert {(k["model"], k["workload"]) for k in res["kernels"]} == {
        ("meta-llama/Llama-3.1-8B-Instruct", "decode"), ("Qwen/Qwen3-8B", "decode")}
    a = read_artifact(tmp_path / "o" / "Qwen--Qwen3-8B" / "decode" / "tiny_scale_kernel.json")
    assert "Qwen/Qwen3-8B" in a["kernel"]["invocation_example"]


def test_two_concurrent_runs_into_one_dir(tmp_path, env):
    procs = [start("collect", "--all", "--vllm", TREE, "--jobs", "2", "--out", "shared", cwd=tmp_path, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 1, err
    out = tmp_path / "shared"
    assert {f.name for f in out.iterdir() if not f.name.startswith(".")} == EXPECTED_FILES | {"collect_results.json"}
    for name in EXPECTED_FILES:
        read_artifact(out / name)
    assert not [f for f in out.iterdir() if f.name.endswith(".tmp")]
    assert json.loads((out / "collect_results.json").read_text())["summary"]["written"] == 4
    # both runs wrote byte-identical artifacts (deterministic), so whichever won, the lines agree
    assert sorted(outs[0][0].splitlines()) == sorted(outs[1][0].splitlines())


@pytest.mark.parametrize("args, needle", [
    (["collect"], "missing KERNEL_NAME"),
    (["collect", "add_one_kernel", "--all"], "not both"),
    (["collect", "add_one_kernel", "--jobs", "2"], "--jobs only applies with --all"),
    (["collect", "add_one_kernel", "--type", "cuda"], "--type only applies with --all"),
    (["collect", "add_one_kernel", "--model", "a/b", "--model", "c/d"], "--model given 2 times"),
    (["collect", "--all", "--jobs", "0"], "must be at least 1"),
])
def test_usage_errors(args, needle, capsys):
    from vkc.cli import main
    assert main([*args, "--vllm", TREE]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vkc: error: ") and needle in err[0], err


def test_worker_output_never_reaches_stdout(tmp_path):
    """collect --all workers (and compilers they run in-process) print to stderr, not stdout."""
    code = ("import os, sys\nfrom vkc.batch.collect_all import quiet_stdout\nquiet_stdout()\n"
            "print('py noise')\nos.write(1, b'c noise\\n')\nprint('probe' , os.environ.get('VKC_PROBE_INPROCESS'))\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "" and "py noise" in p.stderr and "c noise" in p.stderr
