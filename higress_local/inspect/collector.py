"""The inspector's collector: turns the taps' streams into request records and keeps the newest N.

It attaches to both taps over Envoy's admin port (tapstream.py) and folds each stream's segments
in memory (both taps use Envoy's stream id as trace id, so the halves pair). Once a stream is over
(its access-log line appeared, or no segment came for a while after the response started) it
records the four views and what it can tie to the request (ties.py):

- the access-log line (timings, ai_log) by Envoy's x-request-id;
- the plugins' log lines: exactly by request id when wasm-go's logger wrote it, else by time;
- what the backend or the route's service received: by x-request-id in its journal, else by time;
- the calls plugins made to services: by wasm-go's "http call start" lines, else by time.

Every tie says how it was made. Nothing is written per request but the ring's records. Under load
it reattaches the taps to a sample (sampling.py, tapstream.sample_note); each record says whether it
was sampled, and `capture.json` beside the ring counts the requests the
access log saw that were not captured.
Run as `python -m higress_local.inspect.collector --admin HOST:PORT --store DIR ...` (see `argv`).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..mock.client import MockClient, read_token_file
from .correlate import BACKEND
from .sources import AccessLog, GatewayLog, Journals
from .store import CAPTURE_FILE, DEFAULT_RING, Store, capture_switched_on
from .tapfile import Trace, fold
from .sampling import Sampling
from .tapstream import AdminTap, StreamSides, sample_note
from .ties import Ties

DEFAULT_BODY_BYTES = 65536
SETTLE_S = 0.15  # after a stream looks finished, the logs and journals get this long to catch up
QUIET_S = 0.5  # a response whose file stopped growing this long (no access line found) is finished
# Envoy flushes file access logs every --file-flush-interval-msec (1 s by default): a finished stream
# waits this long for its access line (timings, ai_log) before it is recorded without one.
ACCESS_WAIT_S = 3.0
ABANDON_S = 600.0  # a stream with no response for this long is recorded as it is
TICK_S = 0.05
JOURNAL_POLL_S = 0.3
STATS_S = 1.0


@dataclass
class Pending:
    stream: str
    traces: dict[str, Trace] = field(default_factory=dict)
    sides: StreamSides = field(default_factory=StreamSides)
    first_seen: float = 0.0
    updated: float = 0.0  # when its last segment came
    done_at: float | None = None
    has_access: bool = False
    request_id: str | None = None
    sampled: str | None = None  # captured while the taps were attached to a sample: which (its suffix)


class Collector:
    def __init__(self, admin: tuple[str, int], store: Store, gateway_log: Path, access_log: Path,
                 mocks: dict[str, MockClient], clusters: dict[str, str] | None = None,
                 body_bytes: int = DEFAULT_BODY_BYTES, clock: Any = time.time) -> None:
        self.store, self.body_bytes, self.clock = store, body_bytes, clock
        self.segments: deque = deque(maxlen=50_000)  # (time, segment) from the session's thread
        self.tap = AdminTap(admin, body_bytes, self.segments, clock)
        self.capture = Sampling(self.tap)
        self.stats_written = 0.0
        self.log = GatewayLog(Path(gateway_log))
        self.access = AccessLog(Path(access_log))
        self.journals = Journals(mocks, clusters)
        self.ties = Ties(self.log, self.journals, body_bytes)
        self.pending: dict[str, Pending] = {}
        self.pending_began: list[float] = []  # sorted: when each pending stream began (tick sets it)
        self.windows: deque = deque(maxlen=500)  # (start, end) of recent requests: who overlapped whom
        self.recorded = 0
        self.journal_polled = 0.0
        self.skipped = 0  # streams dropped unread because the collector fell behind (see _shed)

    def start(self) -> None:
        """Attach to the taps. Every log and journal is read from its start (each keeps only its
        recent window), so early streams still find their lines and journal entries."""
        self.tap.start()

    def stop(self) -> None:
        self.tap.stop()

    def tick(self) -> int:
        """One pass: take the taps' segments, record finished streams. Returns how many were recorded."""
        now = self.clock()
        on = capture_switched_on(self.store.directory.parent)
        if on != self.tap.enabled.is_set():  # `hlocal reload` after gateway.inspect changed
            self.tap.switch(on)
            self.write_stats(now)
        self._take(now)
        self.log.poll()
        fresh = self.access.poll()
        if on:  # off, the requests not captured are not counted: capture was not asked for
            self.capture.observe(now, fresh)
        # The mocks serve the journal from the same event loop as the traffic: ask only when a
        # request is waiting to be recorded, and at most every JOURNAL_POLL_S.
        if self.pending and now - self.journal_polled >= JOURNAL_POLL_S:
            # Sampled, only the backend's entries of sampled requests can be tied (by request id); a
            # request whose id a plugin removed is then not matched to what the backend received.
            suffix = self.tap.suffix
            self.journals.poll(sample=(BACKEND, suffix) if suffix else None)
            self.journal_polled = now
        ready = []
        for stream, item in list(self.pending.items()):
            if item.done_at is None:
                if self._finished(item, now):
                    item.done_at = now
            elif now - item.done_at >= SETTLE_S and self.journal_polled > item.done_at and (item.has_access or now - item.done_at >= ACCESS_WAIT_S
                                                     or self._access_now(item)):
                ready.append(self._frame(item))
                del self.pending[stream]
        # Every finished request's time span is known before any is tied to log lines and calls,
        # so requests that were in flight together see each other.
        self.windows.extend((frame["start"], frame["end"]) for frame in ready)
        if ready:  # when each stream still pending began: once a tick, not once a record
            self.pending_began = sorted(self._began(other) for other in self.pending.values())
        for frame in sorted(ready, key=lambda f: f["start"]):
            self.store.add(self.build(frame))
        self.recorded += len(ready)
        if now - self.stats_written >= STATS_S:
            self.write_stats(now)
        return len(ready)

    def _take(self, now: float) -> None:
        """Fold the segments the taps' threads received into their streams."""
        sampled = self.tap.suffix
        while self.segments:
            when, segment = self.segments.popleft()
            piece = segment.get("http_streamed_trace_segment") or {}
            stream = str(piece.get("trace_id", ""))
            kind = next((key for key in piece if key != "trace_id"), "")
            if not stream or not kind:
                continue
            item = self.pending.get(stream)
            if item is None:
                item = self.pending[stream] = Pending(stream=stream, first_seen=when, sampled=sampled)
                self.capture.new_streams += 1
            side = item.sides.side(kind)
            trace = item.traces.setdefault(side, Trace(stream=stream))
            fold(trace, segment, self.body_bytes)
            item.updated = max(item.updated, when)
            if side == "client" and kind == "request_headers" and trace.request is not None:
                self.capture.saw(trace.request.header("x-request-id"))
        self._shed()

    def _shed(self) -> None:
        """Under more load than it can record, keep only the newest streams: the ring would drop the
        older ones anyway, so memory and work stay bounded by the ring."""
        excess = len(self.pending) - self.store.ring - 64
        if excess <= 0:
            return
        oldest = sorted(self.pending.values(), key=lambda item: item.first_seen)[:excess]
        for item in oldest:
            del self.pending[item.stream]
        self.skipped += len(oldest)

    def stats(self) -> dict[str, Any]:
        suffix = self.tap.suffix
        mode = "off" if not self.tap.enabled.is_set() else "sampled" if suffix else "all"
        return {"mode": mode, "sample": sample_note(suffix) if suffix else None,
                "attached": self.tap.attached.is_set(), "recorded": self.recorded,
                "not_captured": self.capture.not_captured, "skipped": self.skipped, "pending": len(self.pending),
                "error": self.tap.last_error}

    def write_stats(self, now: float) -> None:
        """`capture.json` beside the ring, replaced whole: what the page and the bench read."""
        path = self.store.directory.parent / CAPTURE_FILE
        tmp = path.with_name(f".{CAPTURE_FILE}.tmp")
        try:
            tmp.write_text(json.dumps({**self.stats(), "time": now}))
            os.replace(tmp, path)
        except OSError:
            return
        self.stats_written = now

    def _finished(self, item: Pending, now: float) -> bool:
        client = item.traces.get("client")
        if client is None:
            return now - item.first_seen > QUIET_S  # an upstream half alone: nothing for the client view
        if not item.request_id:
            item.request_id = (client.request.header("x-request-id") if client.request else None) or ""
        if item.request_id and self.access.by_request_id(item.request_id) is not None:
            item.has_access = True
            return True
        idle = now - item.updated
        if idle <= QUIET_S:
            return False
        return client.response is not None or idle > ABANDON_S

    def _access_now(self, item: Pending) -> bool:
        item.has_access = bool(item.request_id) and self.access.by_request_id(item.request_id or "") is not None
        return item.has_access

    def _frame(self, item: Pending) -> dict[str, Any]:
        """The stream's traces, access line and time span."""
        traces = item.traces
        client = traces.get("client")
        request = client.request if client else None
        rid = request.header("x-request-id") if request else None
        method = request.header(":method") if request else None
        access = self.access.by_request_id(rid) if rid else None
        if access is None:
            access = self._access_by_path(method, item.first_seen)
        if access:
            start = access["_start"]
            end = start + _ms(access.get("duration")) / 1000
        else:  # no access line (yet): the request's own log lines bound it better than when the file was seen
            tagged = [line.time for line in self.log.by_request.get(rid or "", [])]
            start = min([item.first_seen, *tagged])
            end = max([self.clock(), *tagged])
        return {"item": item, "traces": traces, "access": access, "start": start, "end": end}

    # -- tying things to one request --------------------------------------------------------------

    def build(self, frame: dict[str, Any]) -> dict[str, Any]:
        item, traces, access, start, end = frame["item"], frame["traces"], frame["access"], frame["start"], frame["end"]
        client, upstream = traces.get("client"), traces.get("upstream")
        request = client.request if client else None
        rid = request.header("x-request-id") if request else None
        method = request.header(":method") if request else None
        path = request.header(":path") if request else None
        overlap = sum(1 for s, e in self.windows if s < end and e > start) - 1
        # Requests not recorded yet that had begun before this one ended were in flight with it too.
        overlap += bisect.bisect_right(self.pending_began, end)
        record: dict[str, Any] = {
            "stream": item.stream, "request_id": rid, "time": start, "method": method, "path": path,
            "status": _int(client.response.header(":status")) if client and client.response else None,
            "client_request": request.to_dict() if request else None,
            "upstream_request": upstream.request.to_dict() if upstream and upstream.request else None,
            "upstream_response": upstream.response.to_dict() if upstream and upstream.response else None,
            "client_response": client.response.to_dict() if client and client.response else None,
            "access": {k: v for k, v in (access or {}).items() if not k.startswith("_")} or None,
            "ai_log": _ai_log(access),
            "timings": {"start": start, "duration_ms": _ms(access.get("duration")) if access else None,
                        "upstream_ms": _ms(access.get("upstream_service_time")) if access else None},
            "in_flight_with": max(overlap, 0),
            "sampled": sample_note(item.sampled) if item.sampled else None,
        }
        lines = self.ties.lines(rid, start, end, overlap)
        record["plugin_logs"] = [{"plugin": line.plugin, "text": line.text, "time": line.time, "matched_by": how}
                                 for line, how in lines]
        record["plugins"] = sorted({line.plugin for line, _ in lines})
        calls, received = self.ties.calls(rid, method, path, start, end, overlap, [line for line, _ in lines])
        record["service_calls"] = calls
        record["received"] = received
        return record

    def _began(self, item: Pending) -> float:
        """When a pending stream began, as well as known before its access line: its first log line."""
        tagged = [line.time for line in self.log.by_request.get(item.request_id or "", [])[:1]]
        return min([item.first_seen, *tagged])

    def _access_by_path(self, method: str | None, seen: float) -> dict[str, Any] | None:
        """The access line of a request whose x-request-id a plugin removed: same method, nearest start."""
        best = None
        for entry in self.access.without_id:
            if entry.get("method") != method:
                continue
            if best is None or abs(entry["_start"] - seen) < abs(best["_start"] - seen):
                best = entry
        return best


def _ms(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ai_log(access: dict[str, Any] | None) -> Any:
    if not access or access.get("ai_log") in (None, "-", ""):
        return None
    try:
        return json.loads(access["ai_log"])
    except ValueError:
        return access["ai_log"]


# -- the process ---------------------------------------------------------------------------------


def argv(admin: str, store: str, gateway_log: str, access_log: str, mocks: dict[str, str],
         clusters: dict[str, str], token_file: str | None, ring: int = DEFAULT_RING,
         body_bytes: int = DEFAULT_BODY_BYTES) -> list[str]:
    """The collector's command line (after the Python executable)."""
    out = ["-m", "higress_local.inspect.collector", "--admin", admin, "--store", store,
           "--gateway-log", gateway_log, "--access-log", access_log, "--ring", str(ring),
           "--body-bytes", str(body_bytes)]
    for name, url in mocks.items():
        out += ["--mock", f"{name}={url}"]
    for cluster, name in clusters.items():
        out += ["--cluster", f"{cluster}={name}"]
    if token_file:
        out += ["--token-file", token_file]
    return out


def main(args: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hlocal-inspect-collector")
    parser.add_argument("--admin", required=True, help="Envoy's admin HOST:PORT, where the taps stream")
    parser.add_argument("--store", required=True)
    parser.add_argument("--gateway-log", required=True)
    parser.add_argument("--access-log", required=True)
    parser.add_argument("--mock", action="append", default=[])
    parser.add_argument("--cluster", action="append", default=[])
    parser.add_argument("--token-file")
    parser.add_argument("--ring", type=int, default=DEFAULT_RING)
    parser.add_argument("--body-bytes", type=int, default=DEFAULT_BODY_BYTES)
    opts = parser.parse_args(args)
    token = read_token_file(opts.token_file) if opts.token_file else None
    mocks = {name: MockClient(url, token=token) for name, _, url in (m.partition("=") for m in opts.mock)}
    clusters = {cluster: name for cluster, _, name in (c.rpartition("=") for c in opts.cluster)}
    host, _, port = opts.admin.rpartition(":")
    collector = Collector((host, int(port)), Store(Path(opts.store), opts.ring), Path(opts.gateway_log),
                          Path(opts.access_log), mocks, clusters, opts.body_bytes)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    # Below the gateway: under load the CPU goes to Envoy first; the collector catches up after.
    try:
        os.nice(10)
    except OSError:
        pass
    collector.start()
    while not stopping:
        collector.tick()
        time.sleep(TICK_S)  # a poll interval, not synchronisation: the loop ends on SIGTERM
    collector.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
