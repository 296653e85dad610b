"""verify_paths: folder expansion, compile/run hooks, result formatting."""
from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import pytest
from verify_cases import DATA

from vkc.errors import VerifyError
from vkc.verify import CheckResult, all_ok, format_results, verify_paths

GOOD = DATA / "good"


def test_folder_expands_sorted(tmp_path: Path) -> None:
    for f in sorted(GOOD.glob("*.json"), reverse=True):
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "notes.txt").write_text("x")
    res = verify_paths([tmp_path])
    assert list(dict.fromkeys(r.artifact for r in res)) == [
        f"{tmp_path}/rms_norm_kernel.json", f"{tmp_path}/silu_and_mul_kernel.json"]
    assert all_ok(res)
    assert format_results(res) == "2 artifacts, 0 checks failed\n"


def test_missing_and_empty(tmp_path: Path) -> None:
    with pytest.raises(VerifyError, match="no such file"):
        verify_paths([tmp_path / "nope.json"])
    with pytest.raises(VerifyError, match="no \\*.json"):
        verify_paths([tmp_path])


def test_format_results_lists_failures_only() -> None:
    bad = DATA / "bad" / "no-host-code" / "triton_print" / "rms_norm_kernel.json"
    res = verify_paths([GOOD / "rms_norm_kernel.json", bad])
    lines = format_results(res).splitlines()
    assert lines[0].startswith(f"FAIL {bad} [no-host-code]: source_code has host code: line")
    assert lines[1:] == ["2 artifacts, 1 checks failed"]
    assert not all_ok(res)
    assert len(format_results(res, verbose=True).splitlines()) == len(res) + 1


@pytest.mark.parametrize("kind", ["compile", "run"])
def test_hook_module_missing(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setitem(sys.modules, "vkc.verify.triton_compile", None)  # import -> ModuleNotFoundError
    monkeypatch.setitem(sys.modules, "vkc.verify.cuda_compile", types.ModuleType("vkc.verify.cuda_compile"))
    res = verify_paths([GOOD], **{kind: True})
    hooks = [(Path(r.artifact).name, r.ok, r.reason) for r in res if r.check == kind]
    assert hooks == [("rms_norm_kernel.json", False, f"{kind} check not available for triton"),
                     ("silu_and_mul_kernel.json", False, f"{kind} check not available for cuda")]


def test_hooks_called_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    mod = types.ModuleType("vkc.verify.cuda_compile")

    def compile_artifact(path, artifact):
        calls.append(("compile", path, artifact["name"]))
        return [CheckResult(path, "compile", True, "nvcc ok")]

    def run_artifact(path, artifact):
        raise RuntimeError("no GPU\nsecond line")

    mod.compile_artifact, mod.run_artifact = compile_artifact, run_artifact
    monkeypatch.setitem(sys.modules, "vkc.verify.cuda_compile", mod)
    path = GOOD / "silu_and_mul_kernel.json"
    assert [r.check for r in verify_paths([path])][-1] == "invocation-launch" and not calls
    res = verify_paths([path], compile=True, run=True)
    assert calls == [("compile", str(path), "silu_and_mul_kernel")]
    assert [(r.check, r.ok, r.reason) for r in res[-2:]] == [
        ("compile", True, "nvcc ok"), ("run", False, "run check crashed: RuntimeError: no GPU")]


def test_hooks_skipped_for_unloadable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vkc.verify.triton_compile", None)
    res = verify_paths([DATA / "bad" / "json" / "truncated" / "rms_norm_kernel.json"], compile=True)
    assert [r.check for r in res] == ["json"]


def test_cuda_run_records_the_reference_check(tmp_path):
    """A CUDA program's RESULT line with check fields (issue 13): recorded in the details; FAIL fails the run."""
    from vkc.verify.cuda_compile import _run_prog

    prog = tmp_path / "prog"
    line = ("RESULT kernel=k model=m workload=decode config=SMALL time_ms=0.1 GB/s=1 bytes=1 dtype=float gpu=G "
            "stat=median warmup=1 reps=5 l2_flush_MiB=120 check={v} max_abs_err=0.5 max_rel_err=0.1 written=all")
    for verdict, ok in (("PASS", True), ("FAIL", False)):
        prog.write_text(f"#!/bin/sh\necho '{line.format(v=verdict)}'\n")
        prog.chmod(0o755)
        got = _run_prog([str(prog)], "a.json", "reference-check", tmp_path, 30, {}, sandboxed=False)
        assert got.ok is ok and got.details["check"] == verdict and got.details["max_abs_err"] == 0.5
