"""vkc.batch.pool: one crashing, raising or hanging task costs that task only."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pool_tasks

from vkc.batch.pool import imap_isolated


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its reaper counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_crash_raise_hang_are_isolated(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    tasks = [("square", 2), ("exit", 3), ("square", 3), ("segv", None), ("raise", 7),
             ("hang", str(pidfile)), ("square", 4), ("square", 5)]
    t0 = time.monotonic()
    got = dict(imap_isolated(tasks, pool_tasks.run, workers=2, init=pool_tasks.init, init_args=("w",),
                             task_timeout=2.0))
    assert time.monotonic() - t0 < 30
    assert sorted(got) == list(range(len(tasks)))
    for i, n in ((0, 4), (2, 9), (6, 16), (7, 25)):
        assert got[i].error is None and got[i].value[1] == n, got[i]
        assert got[i].value[0].startswith("w:")          # init ran in the worker
    assert got[1].kind == "WorkerCrashed" and "status 3" in got[1].error
    assert got[3].kind == "WorkerCrashed" and "SIGSEGV" in got[3].error
    assert got[4].kind == "ValueError" and "bad value 7" in got[4].error
    assert got[5].kind == "Timeout" and "timed out after 2 s" in got[5].error
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild), "the hung task's subprocess survived the timeout"


def test_failing_init_fails_every_task_without_hanging():
    got = dict(imap_isolated([("square", 1), ("square", 2)], pool_tasks.run, workers=2,
                             init=pool_tasks.bad_init))
    assert sorted(got) == [0, 1]
    for out in got.values():
        assert out.kind == "RuntimeError" and "no index here" in out.error


def test_empty_payloads():
    assert list(imap_isolated([], pool_tasks.run, workers=2)) == []
