"""State shared by the backend and control servers of one mock."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from dataclasses import dataclass, field

from .journal import Journal
from .stubs import StubSet
from .wire import KEEP_BODY, MAX_BODY

# How long a request's log line may wait, and how many may wait, before they are written together.
LOG_FLUSH_SECONDS = 0.05
LOG_FLUSH_LINES = 512


@dataclass
class MockState:
    """Name, live stub set, journal, limits, control token and request log of one running mock."""

    name: str
    stubs: StubSet
    journal: Journal
    quiet: bool = False
    port: int = 0
    control_port: int = 0
    token: str | None = None  # required on the control API when set
    max_body: int = MAX_BODY  # larger request bodies are answered 413
    keep_body: int = KEEP_BODY  # bytes of each body kept for the echo reply and the journal
    # Callers in other threads (MockServer's own) log too; a line must reach stderr whole.
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _pending: list[str] = field(default_factory=list, repr=False)

    def log(self, line: str) -> None:
        """Write one line to stderr, whole: within LOG_FLUSH_SECONDS when called on the event loop.

        A write per line, and then one per turn of the loop, was still about a system call per
        request under load (a turn serves few requests); the lines of LOG_FLUSH_SECONDS now go out
        in one write, and LOG_FLUSH_LINES of them at once.
        """
        if self.quiet:
            return
        # An ISO-8601 UTC time first, so `hlocal logs` can merge the mock's lines with Envoy's.
        with self._log_lock:
            self._pending.append(f"[{_stamp()}] {line}\n")
            pending = len(self._pending)
        if pending >= LOG_FLUSH_LINES:
            self.flush_log()
        elif pending == 1:  # the first line since a flush: one timer for all until the next
            try:
                asyncio.get_running_loop().call_later(LOG_FLUSH_SECONDS, self.flush_log)
            except RuntimeError:  # not on the loop: nothing would run the flush later
                self.flush_log()

    def flush_log(self) -> None:
        """Write the lines logged so far; MockServer.stop calls it too, so none is lost."""
        with self._log_lock:
            if not self._pending:
                return
            text, self._pending = "".join(self._pending), []
            # Looked up per call, not at import, so pytest's capture and redirects apply.
            sys.stderr.write(text)
            sys.stderr.flush()


_stamp_second: tuple[int, str] = (-1, "")


def _stamp() -> str:
    """The time now as 2026-12-07T12:58:45.741Z; the part up to the second is formatted once a second."""
    global _stamp_second
    now = time.time()
    second = int(now)
    if _stamp_second[0] != second:
        _stamp_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_stamp_second[1]}.{int((now - second) * 1000):03d}Z"
