"""A bounded request loop on loopback: several threads, each on its own keep-alive connection.

Used by the reload tests (zero failed requests while a plugin is swapped) and by bench/reload.py.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Sample:
    started: float  # monotonic
    seconds: float
    status: int  # 0: the connection failed
    marker: str | None  # the response header the caller watches (e.g. a version)


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.samples)

    @property
    def failed(self) -> list[Sample]:
        return [s for s in self.samples if s.status != 200]

    @property
    def worst_latency(self) -> float:
        return max((s.seconds for s in self.samples), default=0.0)

    def first_time_all_new(self, is_new: Callable[[str | None], bool], since: float) -> float | None:
        """Seconds after `since` from which every request started sees the new version (None: never)."""
        later = sorted((s for s in self.samples if s.started >= since), key=lambda s: s.started)
        last_old = None
        for sample in later:
            if not is_new(sample.marker):
                last_old = sample.started
        seen_new = [s for s in later if is_new(s.marker)]
        if not seen_new:
            return None
        if last_old is None:
            return seen_new[0].started - since
        after = [s for s in seen_new if s.started > last_old]
        return (after[0].started - since) if after else None


class LoadLoop:
    """Run GET requests from `threads` threads until stop() or `max_seconds`, recording each one."""

    def __init__(self, port: int, *, path: str = "/load", threads: int = 4, marker_header: str = "x-version",
                 max_seconds: float = 120.0, timeout: float = 10.0) -> None:
        self.port, self.path, self.threads = port, path, threads
        self.marker_header = marker_header
        self.max_seconds, self.timeout = max_seconds, timeout
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def __enter__(self) -> "LoadLoop":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, args=(deadline,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> LoadResult:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=self.timeout + 5)
        return self.result

    def wait_for_requests(self, count: int, timeout: float = 30.0) -> None:
        """Block until at least `count` requests have completed (a condition, not a sleep)."""
        from support import wait_for

        wait_for(lambda: self.result.total >= count, timeout, f"{count} requests to complete", interval=0.01)

    def _run(self, deadline: float) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            status, marker = 0, None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
                status, marker = response.status, response.getheader(self.marker_header)
                if response.getheader("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn = None
            sample = Sample(started=started, seconds=time.monotonic() - started, status=status, marker=marker)
            with self._lock:
                self.result.samples.append(sample)
        if conn is not None:
            conn.close()
