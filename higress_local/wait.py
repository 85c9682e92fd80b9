"""Wait on a condition with a wall-clock deadline; the clock and sleep are injectable."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from .errors import WaitTimeout

T = TypeVar("T")


# Set by the SIGINT handler below. Python can swallow a KeyboardInterrupt raised while an import
# holds its module lock; the flag makes the next poll raise it again, so Ctrl-C is never lost.
INTERRUPTED = threading.Event()


def install_interrupt_flag() -> None:
    """Ctrl-C raises KeyboardInterrupt as usual, and also leaves a flag that waits re-check."""

    def handler(signum: int, frame: object) -> None:
        INTERRUPTED.set()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)


def raise_if_interrupted() -> None:
    if INTERRUPTED.is_set():
        raise KeyboardInterrupt


class NotYet(Exception):
    """Raised by a check that is not satisfied yet; its text says what was seen last."""


@dataclass
class Deadline:
    """Poll `check` until it returns without raising one of `retry_on`, or time runs out."""

    timeout: float
    interval: float = 0.05
    retry_on: tuple[type[BaseException], ...] = (NotYet, OSError)
    clock: Callable[[], float] = field(default=time.monotonic)
    sleep: Callable[[float], None] = field(default=time.sleep)

    def until(self, check: Callable[[], T], *, what: str, hint: str = "") -> T:
        """Return check()'s value; raise WaitTimeout naming `what` and the last failure."""
        end = self.clock() + self.timeout
        last: BaseException | None = None
        while True:
            raise_if_interrupted()
            try:
                return check()
            except self.retry_on as exc:
                last = exc
            now = self.clock()
            if now >= end:
                seen = f" (last: {last})" if last is not None and str(last) else ""
                raise WaitTimeout(f"timed out after {self.timeout:g} s waiting for {what}{seen}", hint)
            self.sleep(min(self.interval, max(end - now, 0)))
