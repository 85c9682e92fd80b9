"""The request journal: a thread-safe log of the requests the backend received, bounded in count and bytes."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Iterable, Mapping

from .echo import parse_json

DEFAULT_LIMIT = 10_000
# What the journal may hold in all; the oldest entries go first. Each body is already cut to the
# mock's keep size (wire.KEEP_BODY), so one request can never take the whole budget.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Rough cost of one entry beyond its strings: the dicts and lists that hold them.
_ENTRY_OVERHEAD = 1024
_FIELD_OVERHEAD = 120


def parse_header_filter(text: str) -> tuple[str, str]:
    """Split a `name:value` header filter into a lowercase name and a value."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header filter {text!r} must look like name:value")
    return name.strip().lower(), value.strip()


class Journal:
    """Keeps the most recent requests; `seq` keeps counting across clears so `since` stays valid."""

    def __init__(self, limit: int = DEFAULT_LIMIT, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if limit < 1 or max_bytes < 1:
            raise ValueError("the journal needs room for at least one request (limit and max bytes >= 1)")
        self.limit, self.max_bytes = limit, max_bytes
        self._entries: deque[tuple[int, dict[str, Any]]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self._seq = 0

    @property
    def last_seq(self) -> int:
        """The seq of the newest entry ever recorded (0 before the first request)."""
        with self._lock:
            return self._seq

    @property
    def size_bytes(self) -> int:
        """The estimated bytes the journal holds now."""
        with self._lock:
            return self._bytes

    def record(self, request: Mapping[str, Any], stub: int | None, status: int, time: float) -> None:
        """Append an entry built from an echo document, the matched stub index and the status."""
        # The parsed `json` is not kept (it can take many times the text's memory); entries()
        # parses it again from `body`. The key stays, so entries keep their field order.
        size = _estimate(request)
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, "time": time, **request, "json": None, "stub": stub, "status": status}
            self._entries.append((size, entry))
            self._bytes += size
            # The newest entry always stays, even alone over the budget: the test asking for it
            # must find it.
            while len(self._entries) > 1 and (len(self._entries) > self.limit or self._bytes > self.max_bytes):
                dropped, _ = self._entries.popleft()
                self._bytes -= dropped

    def entries(
        self,
        since: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
        limit: int | None = None,
        suffixes: Iterable[tuple[str, str]] = (),
    ) -> list[dict[str, Any]]:
        """Entries in seq order after `since`, having every (name, value) header and, for every
        (name, suffix), a value of that header ending so; the newest `limit`."""
        wanted = [(name.lower(), value) for name, value in headers]
        ends = [(name.lower(), suffix) for name, suffix in suffixes]
        with self._lock:
            found = [
                entry
                for _, entry in self._entries
                if (since is None or entry["seq"] > since)
                and all(value in entry["headers"].get(name, ()) for name, value in wanted)
                and all(any(v.endswith(suffix) for v in entry["headers"].get(name, ())) for name, suffix in ends)
            ]
        if limit is not None:
            found = found[len(found) - limit :] if limit else []
        # Copies, so an in-process caller editing a result cannot change the journal.
        return [_copy(entry) for entry in found]

    def clear(self) -> int:
        """Drop every entry; return how many there were."""
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            self._bytes = 0
            return count


def _estimate(entry: Mapping[str, Any]) -> int:
    """Approximate memory of an entry: its strings plus a per-entry and per-field overhead."""
    size = _ENTRY_OVERHEAD + len(entry.get("body") or "") + len(entry.get("body_base64") or "")
    size += len(entry["path"]) + len(entry["method"])
    for group in ("headers", "query", "trailers"):
        fields = entry.get(group)
        if fields:
            for name, values in fields.items():
                size += len(name) + _FIELD_OVERHEAD * len(values)
                for value in values:  # nearly always one: cheaper than sum() over a generator
                    size += len(value)
    return size


def _copy(entry: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(entry)
    for group in ("headers", "query", "trailers"):
        if group in entry:
            out[group] = {name: list(values) for name, values in entry[group].items()}
    if not entry.get("body_truncated"):
        out["json"] = parse_json(entry["body"])
    return out
