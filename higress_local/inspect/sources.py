"""What the collector follows besides the taps: Envoy's log, the access log and the mocks' journals.

Each keeps only a bounded window of recent items: the collector matches a request within
seconds of its end, so older items are of no use.
"""

from __future__ import annotations

import bisect
import calendar
import json
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..gatewaylog.logs import plugin_message
from ..mock.client import MockClient, MockClientError

WINDOW = 5000  # items kept per source
_ENVOY_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(\.\d+)?\]")
_PLUGIN = re.compile(r"wasm log (?P<names>[^:]*?): (?P<message>.*)$")
# wasm-go's logger: "[plugin] [plugin id] [x_request_id] message" (higress-group/wasm-go
# pkg/wrapper/log_wrapper.go); on stock Envoy the bridge supplies x_request_id (bridge.wat).
_WASM_GO = re.compile(r"^\[(?P<plugin>[^\]]+)\] \[[^\]]*\] \[(?P<rid>[^\]]+)\] (?P<text>.*)$")
# wasm-go's HttpCall logs each call it starts (pkg/wrapper/http_wrapper.go).
_CALL_START = re.compile(r"http call start, id: \S+, cluster: (?P<cluster>\S+), method: (?P<method>\S+), "
                         r"url: (?P<url>\S+),")
_BRIDGE = "hlocal.bridge"


@dataclass
class LogLine:
    time: float
    plugin: str
    text: str  # what the plugin said
    raw: str
    request_id: str | None = None
    call: tuple[str, str, str] | None = None  # (cluster, method, path) of a wasm-go call start


def _read_new(path: Path, offset: int, limit: int = 4 * 1024 * 1024) -> tuple[list[str], int]:
    """Complete lines appended since `offset` (a partial last line waits); restarts on truncation."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return [], 0
    if size < offset:
        offset = 0
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(limit)
    cut = data.rfind(b"\n")
    if cut < 0:
        return [], offset
    return data[:cut].decode("utf-8", errors="replace").splitlines(), offset + cut + 1


def envoy_time(line: str) -> float | None:
    """Envoy's log timestamp (local time, as spdlog writes it) as epoch seconds."""
    match = _ENVOY_TIME.match(line)
    if not match:
        return None
    whole = time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
    return whole + float(match.group(2) or 0)


def parse_plugin_line(line: str) -> LogLine | None:
    match = _PLUGIN.search(line)
    if match is None:
        return None
    names = match.group("names").split()
    if not names or names[0] == _BRIDGE:
        return None
    text = match.group("message")
    # Shown as `plugin: text`: without wasm-go's "[plugin] [id] [id]" (the name once), a panic as lines.
    out = LogLine(time=envoy_time(line) or 0.0, plugin=names[0], text=plugin_message(names[0], text), raw=line)
    wasm_go = _WASM_GO.match(text)
    if wasm_go and wasm_go.group("rid") != "nil":
        out.request_id = wasm_go.group("rid")
        call = _CALL_START.search(text)
        if call:
            out.call = (call.group("cluster"), call.group("method"), call.group("url").split("?", 1)[0])
    return out


class GatewayLog:
    """Plugin lines by wasm-go request id, and the lines without one in time order (for time windows)."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.by_request: dict[str, list[LogLine]] = {}
        self.order: deque = deque()  # request ids in arrival order, to forget the oldest
        self.untagged: list[LogLine] = []
        self.untagged_times: list[float] = []  # beside `untagged`, for bisection
        self.calls: dict[tuple[str, str, str], set[str]] = {}  # wasm-go call starts: key -> request ids

    def poll(self) -> None:
        fresh, self.offset = _read_new(self.path, self.offset)
        for line in fresh:
            parsed = parse_plugin_line(line)
            if parsed is None:
                continue
            if parsed.request_id is None:
                if self.untagged_times and parsed.time < self.untagged_times[-1]:
                    index = bisect.bisect_right(self.untagged_times, parsed.time)
                    self.untagged.insert(index, parsed)
                    self.untagged_times.insert(index, parsed.time)
                else:
                    self.untagged.append(parsed)
                    self.untagged_times.append(parsed.time)
                continue
            if parsed.request_id not in self.by_request:
                self.by_request[parsed.request_id] = []
                self.order.append(parsed.request_id)
            self.by_request[parsed.request_id].append(parsed)
            if parsed.call is not None:
                self.calls.setdefault(parsed.call, set()).add(parsed.request_id)
        while len(self.order) > WINDOW:
            for old in self.by_request.pop(self.order.popleft(), []):
                if old.call is not None:
                    self.calls.get(old.call, set()).discard(old.request_id or "")
        if len(self.untagged) > WINDOW:
            excess = len(self.untagged) - WINDOW
            del self.untagged[:excess], self.untagged_times[:excess]

    def between(self, start: float, end: float) -> list[LogLine]:
        """Untagged lines stamped within [start, end]."""
        times = self.untagged_times
        return self.untagged[bisect.bisect_left(times, start):bisect.bisect_right(times, end)]


_SECONDS: dict[str, int] = {}  # iso_time's parsed whole seconds: a busy access log repeats each one


def iso_time(text: str) -> float | None:
    """Envoy's %START_TIME% (2026-12-02T09:10:00.199Z) as epoch seconds."""
    head, _, frac = text.rstrip("Z").partition(".")
    whole = _SECONDS.get(head)
    try:
        if whole is None:
            whole = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
            if len(_SECONDS) > 1000:
                _SECONDS.clear()
            _SECONDS[head] = whole
        return whole + float("0." + (frac or "0"))
    except ValueError:
        return None


# An access line's request id, found without parsing the line (Envoy's JSON and Higress's text
# format alike write `"request_id":"..."`; inside an escaped string the quotes carry backslashes).
_REQUEST_ID = re.compile(r'"request_id":\s*"([^"\\]*)"')


class AccessLog:
    """Recent access-log lines, by request id and (for ids a plugin removed) in arrival order.

    A line is parsed when asked for (under load the collector records a sample, but every line comes).
    """

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        try:  # lines before this are not the collector's to count (sampling.py)
            self.start_offset = path.stat().st_size
        except OSError:
            self.start_offset = 0
        self.order: deque = deque()  # the request ids of recent lines, oldest first
        self.by_id: dict[str, Any] = {}  # request id -> its line (str) or, once asked for, its entry
        self.without_id: deque = deque(maxlen=500)  # lines of requests whose x-request-id a plugin removed

    def poll(self) -> list[str | None]:
        """Read the lines appended since the last poll; returns the request ids of those appended
        since the collector started (None for a line without one)."""
        before = self.offset
        fresh, self.offset = _read_new(self.path, self.offset)
        if self.offset < before:  # truncated: every line is new
            self.start_offset, before = 0, 0
        position, added = before, []
        for line in fresh:
            counted = position >= self.start_offset
            position += len(line.encode("utf-8", errors="replace")) + 1 if not counted else 0
            if not line.startswith("{"):
                continue  # not a JSON access entry (gateway.access_log_format may be plain text)
            found = _REQUEST_ID.search(line)
            rid = found.group(1) if found else None
            if rid in (None, "", "-"):
                entry = _access_entry(line)
                if entry is None:
                    continue
                self.without_id.append(entry)
                rid = None
            else:
                self.by_id[rid] = line
                self.order.append(rid)
            if counted:
                added.append(rid)
        while len(self.order) > WINDOW:
            self.by_id.pop(self.order.popleft(), None)
        return added

    def by_request_id(self, request_id: str) -> dict[str, Any] | None:
        found = self.by_id.get(request_id)
        if isinstance(found, str):
            found = self.by_id[request_id] = _access_entry(found)
        return found


def _access_entry(line: str) -> dict[str, Any] | None:
    """One access line as a dict, with `_start` (epoch seconds) added; None if it is not one."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict):
        return None
    entry["_start"] = iso_time(str(entry.get("start_time", ""))) or time.time()
    return entry


class Journals:
    """Recent entries of every mock (the backend and each mock service): by x-request-id, and in
    arrival-time order for time windows."""

    def __init__(self, clients: dict[str, MockClient], clusters: dict[str, str] | None = None) -> None:
        self.clients, self.clusters = clients, dict(clusters or {})
        self.seqs: dict[str, int] = {}
        # Per mock, its entries and their times in arrival order: a window is two bisections, not a
        # scan (the backend journals every request; under load that is thousands a second).
        self.entries: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
        self.times: dict[str, list[float]] = {name: [] for name in clients}
        self.by_request: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def poll(self, sample: tuple[str, str] | None = None) -> None:
        """`sample`: (mock, suffix) to ask that mock only for entries whose x-request-id ends so (the
        backend journals every request; while the taps capture a sample only those can be tied)."""
        for name, client in self.clients.items():
            suffix = ("x-request-id", sample[1]) if sample and sample[0] == name else None
            try:
                fresh = client.journal(since=self.seqs.get(name, 0), header_suffix=suffix)
            except MockClientError as exc:
                _complain(f"journal of {name}: {exc}")
                continue
            entries, times = self.entries[name], self.times[name]
            for entry in fresh:
                self.seqs[name] = max(self.seqs.get(name, 0), int(entry.get("seq", 0)))
                entry["json"] = None  # parsed again by readers from `body`; keeps memory small
                when = float(entry.get("time") or 0)
                times.append(max(when, times[-1]) if times else when)  # kept sorted for bisection
                entries.append(entry)
                for rid in (entry.get("headers") or {}).get("x-request-id", []):
                    self.by_request.setdefault(rid, []).append((name, entry))
            excess = len(entries) - WINDOW
            if excess > WINDOW // 10:  # trimmed in batches: deleting a list's head is a copy
                for old in entries[:excess]:
                    for rid in (old.get("headers") or {}).get("x-request-id", []):
                        self.by_request.pop(rid, None)
                del entries[:excess], times[:excess]

    def between(self, start: float, end: float, skip: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """Entries that arrived within [start, end] in time order, but those of the mock `skip`."""
        found = []
        for name, times in self.times.items():
            if name == skip:
                continue
            low, high = bisect.bisect_left(times, start), bisect.bisect_right(times, end)
            found += [(times[i], name, self.entries[name][i]) for i in range(low, high)]
        found.sort(key=lambda item: item[0])
        return [(name, entry) for _, name, entry in found]


_SAID: set[str] = set()


def _complain(message: str) -> None:
    """Say a problem once on stderr (the collector's log), not once per poll."""
    import sys

    if message not in _SAID and len(_SAID) < 100:
        _SAID.add(message)
        print(f"hlocal inspect collector: {message}", file=sys.stderr, flush=True)
