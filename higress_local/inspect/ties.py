"""What the collector ties to one request besides its taps: the plugins' log lines, what the backend
received and the calls plugins made to services, each saying how it was tied (`matched_by`).

By request id where one exists (wasm-go's logger stamps it on every line and on each call it starts;
the backend's journal has the forwarded x-request-id), else by time, saying when other requests were
in flight. A journal entry tied to one request (claimed) is not tied to another.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from ..state import service_of
from .correlate import BACKEND, REQUEST_ID_HEADER, guess
from .sources import GatewayLog, Journals, LogLine

CLAIMED = 20_000  # journal entries remembered as tied, newest kept
Entries = list[tuple[str, dict[str, Any]]]  # (mock, journal entry)


class Ties:
    def __init__(self, log: GatewayLog, journals: Journals, body_bytes: int) -> None:
        self.log, self.journals, self.body_bytes = log, journals, body_bytes
        self.claimed: deque = deque()  # (mock, seq) already tied to a request, oldest first
        self.claimed_set: set[tuple[str, Any]] = set()

    def lines(self, rid: str | None, start: float, end: float, overlap: int) -> list[tuple[LogLine, str]]:
        """The plugins' log lines: those stamped with the request id, and the unstamped ones in its span."""
        slack = 0.002  # Envoy's log stamps have millisecond precision
        out = [(line, "request id") for line in (self.log.by_request.get(rid, []) if rid else [])]
        out += [(line, _by_time(overlap)) for line in self.log.between(start - slack, end + slack)]
        return sorted(out, key=lambda pair: pair[0].time)

    def calls(self, rid: str | None, method: str | None, path: str | None, start: float, end: float,
              overlap: int, lines: list[LogLine]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any] | None]:
        """The calls plugins made to services ({mock: [entries]}) and what the backend received."""
        received = self._received_by_id(rid)
        # The backend's entries serve only to guess what it received when the request id was removed,
        # and only a request alone in flight can be guessed: otherwise they are not read.
        guessing = received is None and overlap <= 0
        window = [(name, entry) for name, entry in self.journals.between(start - 0.05, end + 0.05,
                                                                        skip=None if guessing else BACKEND)
                  if (name, entry.get("seq")) not in self.claimed_set]
        calls: dict[str, list[dict[str, Any]]] = {}
        window = self._by_call_log(lines, calls, window)
        if guessing:
            received, window = self._guess_received(method, path, window)
        self._by_time(rid, overlap, calls, window)
        return calls, received

    def _received_by_id(self, rid: str | None) -> dict[str, Any] | None:
        for name, entry in (self.journals.by_request.get(rid, []) if rid else []):
            if (name, entry.get("seq")) not in self.claimed_set and _forwarded(entry):
                self._claim(name, entry)
                return {"where": name, "entry": self._cut(entry), "matched_by": "request id"}
        return None

    def _by_call_log(self, lines: list[LogLine], calls: dict[str, list[dict[str, Any]]], window: Entries) -> Entries:
        """wasm-go's own record of each call it started, tied to the request by id. Returns the window
        without the entries tied so."""
        for line in lines:
            if line.call is None:
                continue
            cluster, call_method, call_path = line.call
            service = self.journals.clusters.get(cluster)
            # Tied by the request id on wasm-go's line, so the entry need not fall in the time window:
            # the first unclaimed call of that shape at or after the line.
            for name, entry in self.journals.between(line.time - 0.05, line.time + 60, skip=BACKEND):
                if (service_of(name) == service and entry.get("method") == call_method and entry.get("path") == call_path
                        and (name, entry.get("seq")) not in self.claimed_set):
                    calls.setdefault(name, []).append({**self._cut(entry), "matched_by": "wasm-go call log"})
                    self._claim(name, entry)
                    window = [(n, e) for n, e in window if e is not entry]
                    break
        return window

    def _guess_received(self, method: str | None, path: str | None, window: Entries
                        ) -> tuple[dict[str, Any] | None, Entries]:
        """A plugin removed x-request-id: a forwarded request without one, in this request's time span."""
        bare = [(n, {**e, "headers": {k: v for k, v in (e.get("headers") or {}).items() if k != REQUEST_ID_HEADER}})
                for n, e in window if _forwarded(e) and "x-request-id" not in (e.get("headers") or {})]
        found = guess(bare, method or "", path or "/")
        if found is None:
            return None, window
        entry = next(e for n, e in window if e.get("seq") == found.entry.get("seq") and n == found.where)
        self._claim(found.where, entry)
        received = {"where": found.where, "entry": self._cut(entry), "matched_by": found.matched_by}
        return received, [(n, e) for n, e in window if e is not entry]

    def _by_time(self, rid: str | None, overlap: int, calls: dict[str, list[dict[str, Any]]], window: Entries) -> None:
        """The services' entries left in the request's span, but those another request's wasm-go log
        accounts for."""
        service_cluster = {name: cluster for cluster, name in self.journals.clusters.items()}
        for name, entry in window:
            # a journal is a service's, or one of its replicas' (`name[i]`)
            callers = self.log.calls.get((service_cluster.get(service_of(name), ""), entry.get("method", ""),
                                          entry.get("path", "")))
            if name == BACKEND or (callers and callers - {rid}):
                continue
            calls.setdefault(name, []).append({**self._cut(entry), "matched_by": _by_time(overlap)})
            if overlap <= 0:
                self._claim(name, entry)

    def _claim(self, name: str, entry: dict[str, Any]) -> None:
        key = (name, entry.get("seq"))
        self.claimed.append(key)
        self.claimed_set.add(key)
        while len(self.claimed) > CLAIMED:
            self.claimed_set.discard(self.claimed.popleft())

    def _cut(self, entry: dict[str, Any]) -> dict[str, Any]:
        body = entry.get("body")
        out = {k: v for k, v in entry.items() if k not in ("json", "body_base64")}
        if isinstance(body, str) and len(body) > self.body_bytes:
            out.update(body=body[:self.body_bytes], body_truncated=True)
        return out


def _by_time(overlap: int) -> str:
    return "time" if overlap <= 0 else f"time ({overlap} other request(s) in flight: it may belong to one of them)"


def _forwarded(entry: dict[str, Any]) -> bool:
    """A request the gateway's router forwarded (Envoy adds x-forwarded-proto), not a plugin's call."""
    return "x-forwarded-proto" in (entry.get("headers") or {})
