"""One line of progress with elapsed time on long steps (build, image pull, Envoy compiling a module).

Only on a terminal: when stderr is a pipe or a file (CI, `2>log`) nothing is printed, so logs stay
clean. The line is redrawn in place from a background thread and erased when the step ends; the
step's own result line is then printed by the caller as usual.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Callable, TextIO

TICK_S = 0.5
SHOW_AFTER_S = 1.0  # a step that finishes within a second needs no progress line


class Progress:
    """`with Progress("building x"):` — `detail()` may say what the step is doing right now."""

    def __init__(self, label: str, *, detail: Callable[[], str | None] | None = None,
                 stream: TextIO | None = None, enabled: bool | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label = label
        self.detail = detail
        self.stream = stream or sys.stderr
        self.enabled = _is_tty(self.stream) if enabled is None else enabled
        self.clock = clock
        self.started = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._width = 0

    def line(self) -> str:
        """What the progress line says now, e.g. "starting demo: Envoy is starting plugin x (12 s)"."""
        elapsed = self.clock() - self.started
        what = None
        if self.detail is not None:
            try:
                what = self.detail()
            except Exception:  # a detail that cannot be read right now is simply left out
                what = None
        return f"{self.label}{': ' + what if what else ' …'} ({elapsed:.0f} s)"

    def __enter__(self) -> "Progress":
        self.started = self.clock()
        if self.enabled:
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

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            if self.clock() - self.started < SHOW_AFTER_S:
                continue
            text = self.line()
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
            self._width = len(text)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
