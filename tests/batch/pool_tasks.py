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


def hang_and_write(state: str, task: tuple) -> object:
    """Record the worker's and a grandchild's pid, then keep writing a file (as a worker
    writing artifacts would) until killed."""
    folder, i = task
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.path.join(folder, f"pids.{i}"), "w") as fh:
        fh.write(f"{os.getpid()} {child.pid}")
    for n in range(1200):
        with open(os.path.join(folder, f"late.{i}"), "w") as fh:
            fh.write(str(n))
        time.sleep(0.1)
    return None


def parent_main(folder: str) -> None:
    """A stand-in for ``vkc collect --all``: two workers that outlive nothing."""
    sys.path.insert(0, os.path.dirname(__file__))
    from vkc.batch.pool import imap_isolated
    for _ in imap_isolated([(folder, 0), (folder, 1)], hang_and_write, workers=2):
        pass


if __name__ == "__main__":
    parent_main(sys.argv[1])
