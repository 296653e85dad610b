"""A small process pool that isolates every task: a crash or a hang costs one task only.

Each worker is a ``spawn``-ed process that runs ``init(*init_args)`` once (e.g. load the
cached index) and then ``run(state, payload)`` for one task at a time, sent over a pipe.
Unlike ``concurrent.futures.ProcessPoolExecutor`` (where one dead worker breaks every
pending future), the parent always knows which task a worker holds, so:

* a worker that dies (segfault, ``os._exit``, OOM kill) yields ``Outcome(error=...,
  kind="WorkerCrashed")`` for its task and is replaced;
* a task that runs past ``task_timeout`` seconds yields ``kind="Timeout"``; its worker
  and everything it started are killed (every worker leads its own process group) and
  replaced.

Workers die with the parent, even when it is SIGKILLed (they lead their own sessions, so a
kill of vkc's process group does not reach them): ``PR_SET_PDEATHSIG`` sends SIGTERM, and a
thread watching a pipe only the parent holds sees EOF; either kills the worker's whole
process group (itself and what it started) at once.

``run`` should return a picklable value; an exception escaping it becomes
``kind=<exception class>``.  Workers ignore SIGINT (they lead their own session):
Ctrl-C reaches the parent, which kills them on the way out.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

_READY = "__vkc_ready__"
PR_SET_PDEATHSIG = 1            # linux/prctl.h


@dataclass(frozen=True)
class Outcome:
    """What became of one task: ``value`` from ``run``, or ``error``/``kind`` when it failed."""
    value: Any = None
    error: str | None = None     # one line
    kind: str | None = None      # "WorkerCrashed" | "Timeout" | exception class name
    seconds: float = 0.0


def _kill_own_group(*_args: Any) -> None:
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(137)


def die_with_parent(parent_pid: int, watch: Any) -> None:
    """Kill this worker's process group when the parent goes away (however it ends); ``watch``
    is the read end of a pipe only the parent holds (anything whose ``recv()`` ends at EOF)."""
    signal.signal(signal.SIGTERM, _kill_own_group)
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        pass                                     # not Linux: the pipe below still works
    if os.getppid() != parent_pid:              # the parent died before prctl took effect
        _kill_own_group()

    def watch_parent() -> None:
        try:
            watch.recv()                         # the parent never sends: returns only at EOF
        except (EOFError, OSError):
            pass
        _kill_own_group()

    threading.Thread(target=watch_parent, name="vkc-parent-watch", daemon=True).start()


def _worker_main(conn, init: Callable | None, init_args: tuple, run: Callable, parent_pid: int = 0,
                 watch: Any = None) -> None:
    try:
        os.setsid()          # own process group: the parent can kill us with our children
    except OSError:
        pass
    if watch is not None:
        die_with_parent(parent_pid, watch)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    state: Any = None
    init_error: tuple[str, str] | None = None
    if init is not None:
        try:
            state = init(*init_args)
        except Exception as exc:  # noqa: BLE001  (reported with every task instead)
            init_error = (type(exc).__name__, f"worker start-up failed: {_one_line(exc)}")
    conn.send((_READY, None))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        idx, payload = msg
        t0 = time.perf_counter()
        if init_error is not None:
            out = Outcome(error=init_error[1], kind=init_error[0])
        else:
            try:
                out = Outcome(value=run(state, payload))
            except Exception as exc:  # noqa: BLE001
                out = Outcome(error=_one_line(exc), kind=type(exc).__name__)
        out = Outcome(out.value, out.error, out.kind, time.perf_counter() - t0)
        try:
            conn.send((idx, out))
        except (OSError, ValueError):
            return


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:400] if text else type(exc).__name__


class _Worker:
    def __init__(self, ctx, init, init_args, run):
        self.conn, child = ctx.Pipe(duplex=True)
        watch, self._watch = ctx.Pipe(duplex=False)    # the worker reads EOF when we are gone
        self.proc = ctx.Process(target=_worker_main, args=(child, init, init_args, run, os.getpid(), watch),
                                daemon=True)
        self.proc.start()
        child.close()
        watch.close()
        self.ready = False
        self.task: int | None = None
        self.started = 0.0

    def kill(self) -> None:
        pid = self.proc.pid
        if pid is not None and self.proc.is_alive():
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                try:
                    self.proc.kill()
                except (ProcessLookupError, ValueError):
                    pass
        self.proc.join(5)
        self.conn.close()
        self._watch.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.proc.join(2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()
            self._watch.close()


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "worker died"
    if code < 0:
        try:
            return f"worker killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker killed by signal {-code}"
    return f"worker exited with status {code}"


def imap_isolated(payloads: Iterable[Any], run: Callable[[Any, Any], Any], *, workers: int,
                  init: Callable[..., Any] | None = None, init_args: tuple = (),
                  task_timeout: float | None = None) -> Iterator[tuple[int, Outcome]]:
    """Run ``run(state, payload)`` for every payload in ``workers`` processes.

    Yields ``(index, Outcome)`` as tasks finish (completion order).  ``run`` and ``init``
    must be module-level functions (they are pickled by reference for ``spawn``).
    """
    todo = deque(enumerate(payloads))
    if not todo:
        return
    ctx = mp.get_context("spawn")
    pool = [_Worker(ctx, init, init_args, run) for _ in range(max(1, min(workers, len(todo))))]
    try:
        while True:
            for w in list(pool):
                if w.ready and w.task is None and todo:
                    idx, payload = todo.popleft()
                    w.task, w.started = idx, time.monotonic()
                    try:
                        w.conn.send((idx, payload))
                    except OSError:  # it died while idle: hand the task to a fresh worker
                        todo.appendleft((idx, payload))
                        w.task = None
                        w.kill()
                        pool.remove(w)
                        pool.append(_Worker(ctx, init, init_args, run))
            busy = [w for w in pool if w.task is not None or not w.ready]
            if not busy:
                return
            deadline = None
            if task_timeout is not None:
                ends = [w.started + task_timeout for w in busy if w.task is not None]
                deadline = min(ends) if ends else None
            wait_s = None if deadline is None else max(0.0, deadline - time.monotonic())
            handles: dict[Any, _Worker] = {}
            for w in busy:
                handles[w.conn] = w
                handles[w.proc.sentinel] = w
            ready = wait(list(handles), wait_s)
            done: set[int] = set()
            for h in ready:
                w = handles[h]
                if id(w) in done:
                    continue
                done.add(id(w))
                msg = None
                try:
                    if w.conn.poll():
                        msg = w.conn.recv()
                except (EOFError, OSError):
                    msg = None
                if msg is not None:
                    key, out = msg
                    if key == _READY:
                        w.ready = True
                        continue
                    w.task = None
                    yield key, out
                    continue
                # no message: the process has ended
                w.proc.join(1)
                cidx: int | None = w.task
                elapsed = time.monotonic() - w.started if cidx is not None else 0.0
                why = _describe_exit(w.proc.exitcode)
                w.kill()
                pool.remove(w)
                if cidx is None and todo:  # died before taking a task: fail one, never loop forever
                    cidx, _ = todo.popleft()
                    why += " during start-up"
                if todo:
                    pool.append(_Worker(ctx, init, init_args, run))
                if cidx is not None:
                    yield cidx, Outcome(error=why, kind="WorkerCrashed", seconds=elapsed)
            if task_timeout is not None:
                now = time.monotonic()
                for w in [w for w in pool if w.task is not None and now - w.started >= task_timeout]:
                    tidx, elapsed = w.task, now - w.started
                    assert tidx is not None  # the filter above
                    w.kill()
                    pool.remove(w)
                    if todo:
                        pool.append(_Worker(ctx, init, init_args, run))
                    yield tidx, Outcome(error=f"timed out after {task_timeout:g} s (killed)",
                                       kind="Timeout", seconds=elapsed)
    finally:
        for w in pool:
            if w.task is not None:
                w.kill()
            else:
                w.stop()
