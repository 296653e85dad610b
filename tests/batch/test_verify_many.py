"""``vkc verify`` over many artifacts: parallel compiles and serial runs survive crashing
and hanging artifacts, and the results are saved as JSON beside the artifacts."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vkc.batch.verify_many import verify_many
from vkc.write import write_artifact

# Triton compiles and runs in worker processes, waiting out hanging ones (about 17 s)
pytestmark = pytest.mark.heavy

FAULTS = Path(__file__).resolve().parent / "compiler_faults"
KERNEL = '''import triton
import triton.language as tl


@triton.jit
def {name}(x_ptr):
    tl.store(x_ptr, tl.load(x_ptr) + 1)
'''
COMPILE = ('VKC_COMPILE = {{"entry": "{name}", "target": ("cuda", 90, 32), "signature": {{"x_ptr": "*fp32"}}, '
           '"constexprs": {{}}, "attrs": {{}}, "num_warps": 1, "num_stages": 1}}\n')


def invocation(name: str, body: str) -> str:
    return (f'KERNEL_FILE = "{name}.py"\n' + COMPILE.format(name=name) +
            f"# {name}[(1,)](x)\n" + body)


def make_artifacts(folder: Path) -> None:
    """good: compiles and prints a RESULT line; hang_run: its program never ends;
    segv_compile: its compile kills the process (the compile worker); hang_compile: its
    compile never returns (both through compiler_faults/sitecustomize.py); broken: not JSON."""
    write_artifact("good", "triton", KERNEL.format(name="good"),
                   invocation("good", 'print("RESULT ok=1")\n'), folder)
    write_artifact("hang_run", "triton", KERNEL.format(name="hang_run"),
                   invocation("hang_run", "import time\ntime.sleep(600)\n"), folder)
    write_artifact("segv_compile", "triton", KERNEL.format(name="segv_compile"),
                   invocation("segv_compile", 'print("RESULT ok=1")\n'), folder)
    write_artifact("hang_compile", "triton", KERNEL.format(name="hang_compile"),
                   invocation("hang_compile", 'print("RESULT ok=1")\n'), folder)
    (folder / "broken.json").write_text("{ not json")
    (folder / "collect_results.json").write_text('{"kernels": []}')   # not an artifact: skipped


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    folder = tmp_path_factory.mktemp("arts") / "kernels_out"
    make_artifacts(folder)
    os.environ["TRITON_DEFAULT_FP_FUSION"] = "1"
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAULTS), old]))   # spawned workers only
    try:
        results = verify_many([folder], compile=True, run=True, jobs=2, timeout=2.0, compile_timeout=8.0)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    return folder, results


def by(results, artifact: str, check: str):
    found = [r for r in results if r.artifact.endswith(f"/{artifact}.json") and r.check == check]
    assert len(found) == 1, (artifact, check, [r.line() for r in results])
    return found[0]


def test_good_artifact_compiles_and_runs(verified):
    _, results = verified
    assert by(results, "good", "compile").ok
    run = by(results, "good", "run")
    assert run.ok and run.reason == "RESULT ok=1", run


def test_hanging_run_times_out_alone(verified):
    _, results = verified
    r = by(results, "hang_run", "run")
    assert not r.ok and "timed out after 2" in r.reason
    assert by(results, "hang_run", "compile").ok


def test_crashing_compile_is_isolated(verified):
    _, results = verified
    r = by(results, "segv_compile", "compile")
    assert not r.ok and "crashed" in r.reason and "SIGSEGV" in r.reason, r


def test_hanging_compile_is_killed(verified):
    _, results = verified
    r = by(results, "hang_compile", "compile")
    assert not r.ok and "hung" in r.reason and "timed out after 8 s" in r.reason, r
    assert by(results, "hang_compile", "run").ok      # the run check still happened


def test_broken_json_is_static_only(verified):
    _, results = verified
    assert [r.check for r in results if r.artifact.endswith("/broken.json")] == ["json"]
    assert not any(r.artifact.endswith("collect_results.json") for r in results)


def test_results_json_beside_artifacts(verified):
    folder, results = verified
    data = json.loads((folder / "verify_results.json").read_text())
    assert data["options"]["compile"] and data["options"]["run"] and data["options"]["timeout"] == 2.0
    arts = {a["artifact"]: a for a in data["artifacts"]}
    assert sorted(arts) == ["broken.json", "good.json", "hang_compile.json", "hang_run.json", "segv_compile.json"]
    assert data["summary"]["artifacts"] == 5
    assert data["summary"]["failed_checks"] == sum(not r.ok for r in results)
    good = {c["check"]: c for c in arts["good.json"]["checks"]}
    assert good["run"]["ok"] and good["compile"]["ok"]
    assert "run" in arts["good.json"]["seconds"] and "compile" in arts["good.json"]["seconds"]
    for a in data["artifacts"]:
        for c in a["checks"]:
            assert set(c) == {"check", "ok", "reason", "details"}
            assert "stdout" not in c["details"] and "stderr" not in c["details"]


def test_cli_verify_many(tmp_path):
    """The CLI: stdout as before, exit 11 on failures, --results path, nested folders found."""
    nested = tmp_path / "out" / "m" / "decode"
    write_artifact("good", "triton", KERNEL.format(name="good"), invocation("good", 'print("RESULT ok=1")\n'), nested)
    write_artifact("hang_run", "triton", KERNEL.format(name="hang_run"),
                   invocation("hang_run", "import time\ntime.sleep(600)\n"), nested)
    env = {**os.environ, "TRITON_DEFAULT_FP_FUSION": "1"}
    env.pop("VKC_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "vkc", "verify", "--run", "--timeout", "1", "--jobs", "1",
                        "--results", "res.json", "out"], check=False, cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 11, p.stderr
    assert re.fullmatch(r"2 artifacts, \d+ checks failed", p.stdout.splitlines()[-1])
    assert [ln for ln in p.stdout.splitlines() if "[run]" in ln] == [
        "FAIL out/m/decode/hang_run.json [run]: timed out after 1.0s"]
    data = json.loads((tmp_path / "res.json").read_text())
    runs = {a["artifact"]: [c["ok"] for c in a["checks"] if c["check"] == "run"] for a in data["artifacts"]}
    assert runs == {"out/m/decode/good.json": [True], "out/m/decode/hang_run.json": [False]}
    assert not (tmp_path / "out" / "verify_results.json").exists()
