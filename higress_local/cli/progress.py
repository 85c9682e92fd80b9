"""Progress for steps that last (a build, Envoy compiling a module, stopping a stack): said once past a second.

On a terminal, one line with the elapsed time is redrawn in place from a background thread and
erased when the step ends; the step's own result line is then printed by the caller as usual. When
stderr is a pipe or a file (CI, `2>log`), a step that passes a second gets one plain line saying
what it waits for (and another when that changes), so a log shows where the time went without a
line per tick.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Callable, Iterator, TextIO

TICK_S = 0.5
SHOW_AFTER_S = 1.0  # a step that finishes within a second needs no progress line


class Progress:
    """`with Progress("building x"):` — `detail()` may say what the step is doing right now."""

    def __init__(self, label: str, *, detail: Callable[[], str | None] | None = None,
                 stream: TextIO | None = None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.detail = detail
        self.stream = stream or sys.stderr
        self.tty = _is_tty(self.stream) if tty is None else tty
        self.clock = clock
        self.started = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._width = 0
        self._said = ""  # off a terminal: the last line said

    def line(self) -> str:
        """What the progress line says now, e.g. "starting demo: Envoy is starting plugin x (12 s)"."""
        elapsed = self.clock() - self.started
        what = self._what()
        return f"{self.label}{': ' + what if what else ' …'} ({elapsed:.0f} s)"

    def once(self) -> str:
        """The line said once off a terminal, e.g. "reloading demo: Envoy is compiling plugin x …"."""
        what = self._what()
        return f"{self.label}{': ' + what if what else ''} …"

    def _what(self) -> str | None:
        if self.detail is None:
            return None
        try:
            return self.detail()
        except Exception:  # a detail that cannot be read right now is simply left out
            return None

    def __enter__(self) -> "Progress":
        self.started = self.clock()
        self._thread = threading.Thread(target=self._run, name="hlocal-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * TICK_S)
            if self._width:
                self.stream.write("\r" + " " * self._width + "\r")
                self.stream.flush()

    def echo(self, message: str) -> None:
        """A line of output while the progress line may be showing: erase it first."""
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(message + "\n")
        self.stream.flush()

    def tick(self) -> None:
        """Show what is due now: off a terminal, a line only when what the step waits for is new."""
        if self.clock() - self.started < SHOW_AFTER_S:
            return
        if not self.tty:
            text = self.once()
            if text != self._said:
                self.stream.write(text + "\n")
                self.stream.flush()
                self._said = text
            return
        text = self.line()
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            self.tick()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Phases:
    """Progress for a command made of phases (build, then swap): `phase(label)` for each, and `echo`
    for output lines, printed above whichever progress line shows."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = tty
        self.current: Progress | None = None

    @contextlib.contextmanager
    def phase(self, label: str, detail: Callable[[], str | None] | None = None) -> Iterator[Progress]:
        progress = Progress(label, detail=detail, stream=self.stream, tty=self.tty)
        self.current = progress
        try:
            with progress:
                yield progress
        finally:
            self.current = None

    def echo(self, message: str) -> None:
        if self.current is not None:
            self.current.echo(message)
        else:
            self.stream.write(message + "\n")
            self.stream.flush()
