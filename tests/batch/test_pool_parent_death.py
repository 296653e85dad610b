"""Workers die with their parent, even a SIGKILLed one (issue 15: ``collect --all`` workers
called setsid and kept writing artifacts ~10 s after vkc was killed)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_pool import _alive

TASKS = Path(__file__).resolve().parent / "pool_tasks.py"


def test_workers_and_grandchildren_gone_within_a_second_of_sigkill(tmp_path: Path) -> None:
    parent = subprocess.Popen([sys.executable, str(TASKS), str(tmp_path)], start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("pids.*"))) < 2 or len(list(tmp_path.glob("late.*"))) < 2:
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.1)
    pids = [int(p) for f in sorted(tmp_path.glob("pids.*")) for p in f.read_text().split()]
    os.killpg(parent.pid, signal.SIGKILL)        # vkc's process group; workers lead their own
    parent.wait()
    t0 = time.monotonic()
    while any(_alive(p) for p in pids) and time.monotonic() - t0 < 1.0:
        time.sleep(0.02)
    assert not any(_alive(p) for p in pids), [p for p in pids if _alive(p)]
    before = {f.name: f.read_text() for f in tmp_path.glob("late.*")}
    time.sleep(0.5)
    assert {f.name: f.read_text() for f in tmp_path.glob("late.*")} == before   # nothing writes any more
