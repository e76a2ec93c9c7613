"""Progress of a long `pfd run`: one updating line on a terminal, plain log lines otherwise.

The CLI installs a reporter for the duration of a run (`reporting`); the stages report to
`current()`, which does nothing when none is installed (tests, `dagster dev`). On a terminal the
line shows the stage, items done of the total, rows and rows per second, redrawn in place and
cleared when the run ends; in a log (not a terminal) a line is written when a stage starts, every
`interval` seconds while it runs, and when it ends.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

TTY_REDRAW_SECONDS = 0.1
LOG_INTERVAL_SECONDS = 10.0


class Stage:
    """One stage of the run (`ingest sales_ledger`, `allocate`), counting items and rows."""

    def __init__(self, reporter: Progress, name: str, total: int | None, unit: str) -> None:
        self.reporter = reporter
        self.name = name
        self.total = total
        self.unit = unit
        self.done = 0
        self.rows = 0
        self.started = reporter.clock()

    def advance(self, items: int = 1, rows: int = 0) -> None:
        self.done += items
        self.rows += rows
        self.reporter.update(self)

    def line(self, *, finished: bool = False) -> str:
        if not finished and not self.done:
            of = f" ({self.total:,} {self.unit})" if self.total is not None else ""
            return f"{self.name}: started{of}"
        elapsed = self.reporter.clock() - self.started
        count = f"{self.done:,}/{self.total:,}" if self.total is not None else f"{self.done:,}"
        parts = [f"{count} {self.unit}"]
        if self.rows:
            parts.append(f"{self.rows:,} rows")
            if elapsed > 0:
                parts.append(f"{self.rows / elapsed:,.0f} rows/s")
        parts.append(f"{elapsed:.1f} s")
        return f"{self.name}: {'done, ' if finished else ''}{', '.join(parts)}"


class Progress:
    """Writes stage progress to a stream; `tty` and `interval` default from the stream."""

    def __init__(
        self,
        stream: TextIO | None,
        *,
        tty: bool | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and (stream.isatty() if tty is None else tty))
        default = TTY_REDRAW_SECONDS if self.tty else LOG_INTERVAL_SECONDS
        self.interval = default if interval is None else interval
        self.clock = clock
        self._last_write = float("-inf")
        self._drawn = False  # a TTY line is on screen

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "files") -> Iterator[Stage]:
        """Report a stage from start to end; on an exception the stage is not reported done."""
        stage = Stage(self, name, total, unit)
        self._write(stage.line(), force=True)
        yield stage
        self._write(stage.line(finished=True), force=True)

    def update(self, stage: Stage) -> None:
        self._write(stage.line(), force=False)

    def close(self) -> None:
        """Clear the terminal line, so that what the run prints next starts on a clean line."""
        if self.stream is not None and self.tty and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    def _write(self, text: str, *, force: bool) -> None:
        if self.stream is None:
            return
        now = self.clock()
        if not force and now - self._last_write < self.interval:
            return
        self._last_write = now
        if self.tty:
            width = shutil.get_terminal_size((100, 24)).columns - 1
            self.stream.write("\r" + text[:width] + "\x1b[K")
            self._drawn = True
        else:
            self.stream.write(f"[pfd {time.strftime('%H:%M:%S')}] {text}\n")
        self.stream.flush()


_SILENT = Progress(None)
_current: Progress = _SILENT


def current() -> Progress:
    """The reporter of the running `pfd run`, or one that writes nothing."""
    return _current


@contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Install `progress` as the run's reporter for the duration of the block."""
    global _current
    previous, _current = _current, progress
    try:
        yield progress
    finally:
        progress.close()
        _current = previous
