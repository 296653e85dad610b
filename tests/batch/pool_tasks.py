"""Task functions for the pool tests (module level: spawn pickles them by reference)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def init(tag: str) -> str:
    return f"{tag}:{os.getpid()}"


def run(state: str, task: tuple) -> object:
    kind, arg = task
    if kind == "square":
        return (state, arg * arg)
    if kind == "raise":
        raise ValueError(f"bad value {arg}")
    if kind == "exit":
        os._exit(arg)
    if kind == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if kind == "hang":
        # a grandchild too: the timeout must kill the worker's whole process group
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        with open(arg, "w") as fh:
            fh.write(str(child.pid))
        time.sleep(120)
    raise AssertionError(kind)


def bad_init() -> None:
    raise RuntimeError("no index here")
