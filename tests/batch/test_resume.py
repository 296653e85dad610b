"""``collect --all --resume`` after a SIGKILL half-way writes only the missing artifacts and
the folder ends byte-identical to an uninterrupted run; SIGTERM exits 143 with one line."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_collect_all import TREE, vkc
from test_pool import _alive

from vkc.batch.resume import JOURNAL

ARTIFACTS = 4          # what the fixture tree yields (see test_collect_all.EXPECTED_FILES)


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict:
    e = dict(os.environ)
    e.pop("VKC_DEBUG", None)
    e["VKC_CACHE_DIR"] = str(tmp_path_factory.mktemp("vkc-cache"))
    e["HF_HUB_OFFLINE"] = "1"
    e["VKC_CODE_DIGEST"] = "pinned"    # others edit this checkout while the tests run
    return e


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    dst = tmp_path_factory.mktemp("tree") / "tree"
    shutil.copytree(TREE, dst)
    return dst


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "collect_results.json"}    # that one records timings


def _start(cwd: Path, tree: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vkc", "collect", "--all", "--vllm", str(tree), "--jobs", "1",
                             "--out", "out"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _first_wrote(p: subprocess.Popen) -> str:
    assert p.stdout is not None
    line = p.stdout.readline()
    assert line.startswith("WROTE "), (line, p.stderr.read() if p.stderr else "")
    return line


@pytest.mark.heavy  # two `collect --all` subprocesses, one killed mid-run
def test_resume_after_sigkill_is_byte_identical(tmp_path: Path, tree: Path, env: dict) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    full = vkc("collect", "--all", "--vllm", str(tree), "--jobs", "1", "--out", "out", cwd=tmp_path / "a", env=env)
    assert full.returncode == 1 and full.stdout.count("WROTE ") == ARTIFACTS, full.stderr
    p = _start(tmp_path / "b", tree, env)
    _first_wrote(p)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(1.0)                        # workers die with vkc; nothing writes after this
    have = {f for f in _files(tmp_path / "b" / "out") if f.endswith(".json")}
    journaled = {json.loads(line)["path"] for line in (tmp_path / "b" / "out" / JOURNAL).read_text().splitlines()
                 if line.strip()}
    assert 1 <= len(journaled) <= len(have) < ARTIFACTS     # a file the kill beat the journal to is redone
    res = vkc("collect", "--all", "--resume", "--vllm", str(tree), "--jobs", "1", "--out", "out",
              cwd=tmp_path / "b", env=env)
    wrote = {line.split()[1].removeprefix("out/") for line in res.stdout.splitlines()}
    assert all(line.startswith("WROTE ") for line in res.stdout.splitlines())
    every = {f for f in _files(tmp_path / "a" / "out") if f.endswith(".json")}
    assert wrote == every - journaled and every - have <= wrote
    assert _files(tmp_path / "b" / "out") == _files(tmp_path / "a" / "out")
    again = vkc("collect", "--all", "--resume", "--vllm", str(tree), "--jobs", "1", "--out", "out",
                cwd=tmp_path / "b", env=env)
    assert again.stdout == "" and f"{ARTIFACTS} written" in again.stderr
    assert _files(tmp_path / "b" / "out") == _files(tmp_path / "a" / "out")
    # the skipped jobs' records say what the first run's did: mode, source, model-accuracy
    keep = ("path", "invocation_mode", "invocation_source", "model_accurate", "reference_source")

    def recs(d: Path) -> list:
        data = json.loads((d / "out" / "collect_results.json").read_text())
        return sorted(tuple(r.get(k) for k in keep) for r in data["kernels"] if r["status"] == "written")
    assert recs(tmp_path / "b") == recs(tmp_path / "a")
    assert all(r[1] for r in recs(tmp_path / "b"))


@pytest.mark.slow
def test_resume_redoes_after_a_tree_change_or_an_edited_file(tmp_path: Path, tree: Path, env: dict) -> None:
    first = vkc("collect", "--all", "--vllm", str(tree), "--jobs", "2", "--out", "out", cwd=tmp_path, env=env)
    assert first.stdout.count("WROTE ") == ARTIFACTS
    victim = min((tmp_path / "out").glob("*.json"))
    victim.write_text(victim.read_text() + " ")
    res = vkc("collect", "--all", "--resume", "--vllm", str(tree), "--jobs", "2", "--out", "out", cwd=tmp_path, env=env)
    assert res.stdout.count("WROTE ") == 1 and victim.name in res.stdout
    src = tree / "vllm" / "ops" / "b.py"
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 10**9))
    res = vkc("collect", "--all", "--resume", "--vllm", str(tree), "--jobs", "2", "--out", "out", cwd=tmp_path, env=env)
    assert res.stdout.count("WROTE ") == ARTIFACTS


def test_resume_needs_all(tmp_path: Path, env: dict) -> None:
    p = vkc("collect", "add_one_kernel", "--resume", "--vllm", str(TREE), cwd=tmp_path, env=env)
    assert p.returncode == 2 and "--resume only applies with --all" in p.stderr


def test_sigterm_exits_143_with_one_line(tmp_path: Path, tree: Path, env: dict) -> None:
    p = _start(tmp_path, tree, env)
    _first_wrote(p)
    worker_pids = [int(x) for x in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                                   text=True).stdout.split()]
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and err.rstrip().endswith("vkc: terminated") and "Traceback" not in err
    t0 = time.monotonic()
    while any(_alive(w) for w in worker_pids) and time.monotonic() - t0 < 2:
        time.sleep(0.05)
    assert not any(_alive(w) for w in worker_pids)
