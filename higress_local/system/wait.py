"""Wait on a condition with a wall-clock deadline; the clock and sleep are injectable."""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from ..errors import ExitCode, Stopped, WaitTimeout

T = TypeVar("T")


# Set by the signal handler below. Python can swallow a KeyboardInterrupt raised while an import
# holds its module lock; the flag makes the next poll raise it again, so a stop is never lost.
INTERRUPTED = threading.Event()
_RECEIVED: list[int] = []

# SIGTERM is what `timeout`, CI cancellation and `kill` send; SIGHUP a closed terminal. Both stop
# hlocal the way Ctrl-C does (cleanup runs), and the exit code says which signal it was.
_STOP_SIGNALS = {
    signal.SIGINT: ExitCode.INTERRUPTED,
    signal.SIGTERM: ExitCode.TERMINATED,
    signal.SIGHUP: ExitCode.HANGUP,
}


def _stop_exception(signum: int) -> BaseException:
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return Stopped(signum, signal.Signals(signum).name, _STOP_SIGNALS[signal.Signals(signum)])


def install_interrupt_flag() -> None:
    """SIGINT raises KeyboardInterrupt, SIGTERM/SIGHUP raise Stopped; each also leaves a flag waits re-check."""

    def handler(signum: int, frame: object) -> None:
        _RECEIVED.append(signum)
        INTERRUPTED.set()
        raise _stop_exception(signum)

    if threading.current_thread() is threading.main_thread():
        for signum in _STOP_SIGNALS:
            signal.signal(signum, handler)


def clear_interrupt() -> None:
    """Forget a stop signal that has been handled (the reload agent goes on serving after one)."""
    INTERRUPTED.clear()
    _RECEIVED.clear()


def raise_if_interrupted() -> None:
    if INTERRUPTED.is_set():
        raise _stop_exception(_RECEIVED[-1] if _RECEIVED else signal.SIGINT)


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
