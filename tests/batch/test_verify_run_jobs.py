"""``vkc verify --run --run-jobs N`` runs N examples at once and says the times were taken under
contention.  Two examples wait for each other (a file barrier): one at a time, the first would
time out; two at a time, both finish."""
from __future__ import annotations

import json

from vkc.batch.verify_many import verify_many
from vkc.write import write_artifact

KERNEL = '''import triton
import triton.language as tl


@triton.jit
def {name}(x_ptr):
    tl.store(x_ptr, tl.load(x_ptr) + 1)
'''
BODY = '''import os, pathlib, time
barrier = pathlib.Path(os.environ["VKC_TEST_BARRIER"])
(barrier / "{name}").write_text("here")
deadline = time.time() + 30
while len(list(barrier.iterdir())) < 2 and time.time() < deadline:
    time.sleep(0.05)
print("RESULT ok=1" if len(list(barrier.iterdir())) == 2 else "RESULT ok=0 alone")
'''


def make(folder, name):
    inv = f'KERNEL_FILE = "{name}.py"\n# {name}[(1,)](x)\n' + BODY.format(name=name)
    write_artifact(name, "triton", KERNEL.format(name=name), inv, folder)


def test_two_runs_at_once(tmp_path, monkeypatch):
    folder, barrier = tmp_path / "kernels_out", tmp_path / "barrier"
    barrier.mkdir()
    make(folder, "first")
    make(folder, "second")
    monkeypatch.setenv("VKC_TEST_BARRIER", str(barrier))
    results = verify_many([folder], run=True, run_jobs=2, jobs=1, timeout=60.0, sandboxed=False)
    runs = {r.artifact.rsplit("/", 1)[-1]: r for r in results if r.check == "run"}
    assert sorted(runs) == ["first.json", "second.json"]
    assert all(r.ok and r.reason == "RESULT ok=1" for r in runs.values()), [r.line() for r in runs.values()]
    options = json.loads((folder / "verify_results.json").read_text())["options"]
    assert options["run_jobs"] == 2 and options["times_under_contention"] is True


def test_one_at_a_time_is_the_default(tmp_path, monkeypatch):
    folder, barrier = tmp_path / "kernels_out", tmp_path / "barrier"
    barrier.mkdir()
    make(folder, "only")
    monkeypatch.setenv("VKC_TEST_BARRIER", str(barrier))
    (barrier / "other").write_text("here")     # the barrier is already met: one run suffices
    verify_many([folder], run=True, jobs=1, timeout=60.0, sandboxed=False)
    options = json.loads((folder / "verify_results.json").read_text())["options"]
    assert options["run_jobs"] == 1 and options["times_under_contention"] is False
