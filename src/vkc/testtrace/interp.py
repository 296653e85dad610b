"""Earlier launches of a test run for real, under Triton's interpreter on the CPU (worker only).

The worker records every Triton launch and runs none, so an integer buffer an earlier kernel writes
(``flags``, a ``k_cache``, an ``indptr``) holds garbage when the target takes it, and is refused.
:class:`Interpreter` runs such an earlier launch under ``triton.runtime.interpreter`` instead, so
its outputs are what the kernel computes -- but only while the whole state of the test is real:

* no launch before it was left unrun (too large, failed, or skipped),
* no compiled-op stand-in has run (:data:`.standins.TOUCHED` is empty: a stand-in leaves garbage),
* every tensor argument is on the CPU,
* its grid has at most :data:`MAX_PROGRAMS` programs, and the interpreted runs of one attempt take at
  most :data:`BUDGET_S` seconds of CPU time (a ``SIGVTALRM`` timer ends a run that exceeds it).

The first launch that cannot be run makes the state *dirty* for the rest of the attempt: nothing
after it is interpreted, so a kernel never runs on another's missing output.  A run that raises is a
launch left unrun (its buffers may be half written).  Inside the run, ``@triton.jit`` helpers are
called through the interpreter (``JITFunction.__call__`` is patched for its duration).

The interpreter does not check addresses (an out-of-bounds access is a segfault), so the run happens
in a forked child: it sends back the bytes of every storage the launch took (at most
:data:`MAX_BYTES` in all) and the worker copies them in; a child that crashes, fails or runs out of
time leaves every storage as it was and the state dirty.
"""
from __future__ import annotations

import contextlib
import ctypes
import math
import os
import select
import signal
import struct
import time
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["BUDGET_S", "MAX_PROGRAMS", "Interpreter"]

MAX_PROGRAMS = 4096
BUDGET_S = 20.0
MAX_BYTES = 256 << 20


class _Budget(BaseException):
    pass


@contextlib.contextmanager
def _helpers_interpreted() -> Iterator[None]:
    from triton.runtime import interpreter, jit

    real = jit.JITFunction.__call__

    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return interpreter.InterpretedFunction(self.fn)(*args, **kwargs)

    jit.JITFunction.__call__ = call  # type: ignore[method-assign]
    try:
        yield
    finally:
        jit.JITFunction.__call__ = real  # type: ignore[method-assign]


@contextlib.contextmanager
def _cpu_limit(seconds: float) -> Iterator[None]:
    def stop(*_a: Any) -> None:
        raise _Budget()

    old = signal.signal(signal.SIGVTALRM, stop)
    signal.setitimer(signal.ITIMER_VIRTUAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, old)


class Interpreter:
    """Per test attempt: runs earlier launches while the state is real (see the module doc)."""

    def __init__(self, budget_s: float = BUDGET_S, max_programs: int = MAX_PROGRAMS) -> None:
        self.dirty: str | None = None
        self.left = budget_s
        self.max_programs = max_programs
        self.ran: list[str] = []

    def why_not(self, grid: Any, tensors: list[Any], touched: Mapping[int, Any]) -> str | None:
        """Why this launch is not interpreted (None: it may be)."""
        if self.dirty:
            return self.dirty
        if touched:
            return "a compiled-op stand-in ran before it"
        if any(t.device.type != "cpu" for t in tensors):
            return "a tensor argument is not on the CPU"
        if not isinstance(grid, (tuple, list)) or not grid or len(grid) > 3:
            return "its grid is not a tuple of at most 3 ints"
        n = math.prod(int(g) for g in grid)
        if n > self.max_programs:
            return f"its grid has {n} programs (> {self.max_programs})"
        if self.left <= 0:
            return "the interpreter's time budget is spent"
        return None

    def run(self, jit_fn: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], grid: tuple[int, ...],
            tensors: list[Any], touched: Mapping[int, Any]) -> bool:
        """Run ``jit_fn[grid](*args, **kwargs)`` interpreted; True when it ran to the end.  False
        (and the state dirty from now on) when it may not run or failed."""
        why = self.why_not(grid, tensors, touched)
        if why is not None:
            self.dirty = self.dirty or f"{name} was recorded, not run ({why})"
            return False
        storages = {int(t.untyped_storage()._cdata): t.untyped_storage() for t in tensors}
        if sum(int(st.nbytes()) for st in storages.values()) > MAX_BYTES:
            self.dirty = f"{name} was recorded, not run (its buffers exceed {MAX_BYTES >> 20} MiB)"
            return False
        start = time.monotonic()
        try:
            err = _forked(lambda: _interpret(jit_fn, args, kwargs, grid, self.left), list(storages.values()),
                          self.left + 5)
        finally:
            self.left -= time.monotonic() - start
        if err is not None:
            self.dirty = f"{name} failed under the interpreter ({err})"
            return False
        self.ran.append(name)
        return True


def _interpret(jit_fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], grid: tuple[int, ...],
               budget: float) -> None:
    from triton.runtime import interpreter

    with _helpers_interpreted(), _cpu_limit(budget):
        interpreter.InterpretedFunction(jit_fn.fn).run(*args, grid=tuple(int(g) for g in grid), warmup=False,
                                                       **kwargs)


def _read_all(fd: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _w, _x = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _forked(call: Any, storages: list[Any], wall_s: float) -> str | None:
    """Run ``call`` in a forked child; copy the child's bytes of ``storages`` back.  None: it ran."""
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # the child: never returns
        code = 1
        try:
            os.close(rfd)
            call()
            with os.fdopen(wfd, "wb") as w:
                for st in storages:
                    n = int(st.nbytes())
                    w.write(struct.pack("<Q", n) + ctypes.string_at(st.data_ptr(), n))
            code = 0
        except BaseException:  # noqa: BLE001 -- the exit status says it failed
            code = 1
        finally:
            os._exit(code)
    os.close(wfd)
    try:
        data = _read_all(rfd, time.monotonic() + wall_s)
    finally:
        os.close(rfd)
    if data is None:
        os.kill(pid, signal.SIGKILL)
    _pid, status = os.waitpid(pid, 0)
    if data is None:
        return f"more than {wall_s:.0f} s"
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
        return f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else "it raised"
    pos = 0
    for st in storages:
        (n,) = struct.unpack_from("<Q", data, pos)
        if n != int(st.nbytes()):
            return "the child's storages differ"
        ctypes.memmove(st.data_ptr(), data[pos + 8:pos + 8 + n], n)
        pos += 8 + n
    return None
