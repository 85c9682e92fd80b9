"""State shared by the backend and control servers of one mock."""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field

from .journal import Journal
from .stubs import StubSet


@dataclass
class MockState:
    """Name, live stub set, journal and request log of one running mock."""

    name: str
    stubs: StubSet
    journal: Journal
    quiet: bool = False
    port: int = 0
    control_port: int = 0
    # Set by stop(): delays and event streams wait on it, so they end instead of outliving the mock.
    stopping: threading.Event = field(default_factory=threading.Event, repr=False)
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def log(self, line: str) -> None:
        """Write one line to stderr, whole, even when handler threads log at once."""
        if self.quiet:
            return
        with self._log_lock:
            # Looked up per call, not at import, so pytest's capture and redirects apply.
            sys.stderr.write(f"{line}\n")
            sys.stderr.flush()

    def pause(self, milliseconds: float) -> bool:
        """Wait that long; False if the mock started stopping meanwhile."""
        return not self.stopping.wait(milliseconds / 1000)
