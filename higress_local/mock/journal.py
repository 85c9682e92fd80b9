"""The request journal: a bounded, thread-safe log of every request the backend received."""

from __future__ import annotations

import copy
import threading
from collections import deque
from typing import Any, Iterable, Mapping

DEFAULT_LIMIT = 10_000


def parse_header_filter(text: str) -> tuple[str, str]:
    """Split a `name:value` header filter into a lowercase name and a value."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header filter {text!r} must look like name:value")
    return name.strip().lower(), value.strip()


class Journal:
    """Keeps the most recent requests; `seq` keeps counting across clears so `since` stays valid."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._lock = threading.Lock()
        self._seq = 0

    @property
    def last_seq(self) -> int:
        """The seq of the newest entry ever recorded (0 before the first request)."""
        with self._lock:
            return self._seq

    def record(self, request: Mapping[str, Any], stub: int | None, status: int, time: float) -> dict[str, Any]:
        """Append an entry built from an echo document, the matched stub index and the status."""
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, "time": time, **request, "stub": stub, "status": status}
            self._entries.append(entry)
            return entry

    def entries(
        self,
        since: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Entries in seq order after `since`, having every (name, value) header; the newest `limit`."""
        wanted = [(name.lower(), value) for name, value in headers]
        with self._lock:
            found = [
                entry
                for entry in self._entries
                if (since is None or entry["seq"] > since)
                and all(value in entry["headers"].get(name, ()) for name, value in wanted)
            ]
        if limit is not None:
            found = found[len(found) - limit :] if limit else []
        # Copies, so an in-process caller editing a result cannot change the journal.
        return copy.deepcopy(found)

    def clear(self) -> int:
        """Drop every entry; return how many there were."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count
