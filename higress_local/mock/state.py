"""State shared by the backend and control servers of one mock."""

from __future__ import annotations

import datetime
import sys
import threading
from dataclasses import dataclass, field

from .journal import Journal
from .stubs import StubSet
from .wire import KEEP_BODY, MAX_BODY


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
    # Handler threads of the control API log too; a line must reach stderr whole.
    _log_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def log(self, line: str) -> None:
        """Write one line to stderr, whole."""
        if self.quiet:
            return
        with self._log_lock:
            # Looked up per call, not at import, so pytest's capture and redirects apply.
            # An ISO-8601 UTC time first, so `hlocal logs` can merge the mock's lines with Envoy's.
            stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
            sys.stderr.write(f"[{stamp.replace('+00:00', 'Z')}] {line}\n")
            sys.stderr.flush()
