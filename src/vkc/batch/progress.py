"""Progress on stderr: a rich progress bar on a terminal, plain lines otherwise."""
from __future__ import annotations

import os
import sys
from typing import Any, TextIO


class PlainProgress:
    """One line per finished item: ``vkc: [  3/890] written  NAME  0.42 s``."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.total = 0
        self.done = 0

    def start(self, total: int, label: str) -> None:
        self.total, self.done = total, 0
        print(f"vkc: {label}: {total} to do", file=self.stream, flush=True)

    def advance(self, status: str, name: str, seconds: float, detail: str = "") -> None:
        self.done += 1
        width = len(str(self.total))
        tail = f"  {detail}" if detail else ""
        print(f"vkc: [{self.done:>{width}}/{self.total}] {status:<14} {name}  {seconds:.2f} s{tail}",
              file=self.stream, flush=True)

    def stop(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class RichProgress(PlainProgress):
    """A rich progress bar with counts by status; failures are also printed above the bar."""

    def __init__(self, stream: TextIO | None = None):
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        self.console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        self.counts: dict[str, int] = {}
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, transient=False,
            # WROTE lines go to stdout; only when stdout is this terminal too are they routed
            # above the bar (otherwise they would land in stderr)
            redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
        self.task: Any = None   # rich's TaskID once started

    def start(self, total: int, label: str) -> None:
        self.total, self.done = total, 0
        self.progress.start()
        self.progress.console.print(f"vkc: {label}", markup=False, highlight=False, soft_wrap=True)
        self.task = self.progress.add_task("vkc", total=total, counts="")

    def advance(self, status: str, name: str, seconds: float, detail: str = "") -> None:
        self.done += 1
        self.counts[status] = self.counts.get(status, 0) + 1
        if status not in ("written", "ok", "not applicable"):
            from rich.markup import escape
            self.progress.console.print(f"[red]{escape(status)}[/red] {escape(name)}: {escape(detail)}",
                                        highlight=False, soft_wrap=True)
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        self.progress.update(self.task, advance=1, counts=counts)

    def stop(self) -> None:
        if self.task is not None:
            self.progress.stop()
            self.task = None


def make_progress(stream: TextIO | None = None, *, fancy: bool | None = None) -> PlainProgress:
    """RichProgress when ``stream`` (default stderr) is a terminal, else PlainProgress."""
    stream = stream or sys.stderr
    if fancy is None:
        fancy = _isatty(stream) and os.environ.get("TERM", "") != "dumb"
    if fancy:
        try:
            return RichProgress(stream)
        except ImportError:
            pass
    return PlainProgress(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
