"""What a smoke test looks at: requests to the gateway, what the backend received, what plugins logged."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import requests

from ..errors import EnvironmentProblem, WaitTimeout
from ..gatewaylog.logs import short_plugin_line
from .send import REQUEST_ID_HEADER, Exchange
from ..system.wait import Deadline, NotYet
from ..gatewaylog.logs import PLUGIN_LINE
from ..mock.client import MockClientError

LOG_TIMEOUT = 5.0  # seconds assert_logged waits for a line (docker's log driver lags a little)


class GatewaySession(requests.Session):
    """A requests.Session whose relative URLs go to the gateway; every request carries a fresh
    x-hlocal-request-id so the backend's journal entry for it can be found."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.trust_env = False  # an http_proxy from the environment must not swallow 127.0.0.1
        self.responses: list[requests.Response] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if "://" not in url:
            url = f"{self.base_url}/{url.lstrip('/')}"
        headers = dict(kwargs.pop("headers", None) or {})
        if not any(name.lower() == REQUEST_ID_HEADER for name in headers):
            headers[REQUEST_ID_HEADER] = uuid.uuid4().hex
        kwargs.setdefault("timeout", self.timeout)
        response = super().request(method, url, *args, headers=headers, **kwargs)
        self.responses.append(response)
        return response


def request_id(response: requests.Response) -> str | None:
    """The x-hlocal-request-id a GatewaySession gave the request behind `response`."""
    return response.request.headers.get(REQUEST_ID_HEADER)


class Headers(Mapping[str, str]):
    """Multi-valued, case-insensitive headers: `h["x-a"]` joins repeated values with ", ",
    `h.getall("x-a")` lists them in arrival order."""

    def __init__(self, values: Mapping[str, list[str]]) -> None:
        self._values = {name.lower(): list(items) for name, items in values.items()}

    def __getitem__(self, name: str) -> str:
        return ", ".join(self._values[name.lower()])

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def getall(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), []))

    def __repr__(self) -> str:
        return f"Headers({self._values!r})"


@dataclass
class UpstreamRequest:
    """One request as the mock backend received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: str | None  # None when the body is not UTF-8 (see body_bytes)
    json: Any
    seq: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> "UpstreamRequest":
        return cls(method=entry["method"], path=entry["path"], query=dict(entry.get("query") or {}),
                   headers=Headers(entry.get("headers") or {}), body=entry.get("body"), json=entry.get("json"),
                   seq=entry.get("seq", 0), raw=dict(entry))

    @property
    def body_bytes(self) -> bytes:
        if self.body is not None:
            return self.body.encode()
        return base64.b64decode(self.raw.get("body_base64") or b"")

    # The journal entry's own keys, as `Stack.request(...).upstream` gave them when it was a plain dict.
    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


class UpstreamJournal:
    """The mock backend's journal from a starting point on (the start of a test)."""

    def __init__(self, client: Any, since: int) -> None:
        self.client = client
        self.since = since

    def all(self) -> list[UpstreamRequest]:
        """Every request the backend received since the start, oldest first."""
        return [UpstreamRequest.from_entry(e) for e in self._call(self.client.journal, since=self.since)]

    def last(self) -> UpstreamRequest:
        """The newest request the backend received since the start."""
        entries = self._call(self.client.journal, since=self.since, limit=1)
        if not entries:
            raise AssertionError("the backend received no request during this test "
                                 "(did the plugin answer by itself? check the response)")
        return UpstreamRequest.from_entry(entries[0])

    def of(self, response: requests.Response) -> UpstreamRequest | None:
        """What the backend received for the request behind `response` (None: it never arrived)."""
        rid = request_id(response)
        found = self._call(self.client.find, REQUEST_ID_HEADER, rid) if rid else []
        return UpstreamRequest.from_entry(found[-1]) if found else None

    def clear(self) -> None:
        """Forget every request the backend received so far."""
        self._call(self.client.clear)

    def __len__(self) -> int:
        return len(self.all())

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except MockClientError as exc:
            raise EnvironmentProblem(f"cannot read the backend journal: {exc}", "see `hlocal status`") from exc


class PluginLogs:
    """The plugins' log lines since a marker (the start of a test)."""

    def __init__(self, stack: Any, marker: Any) -> None:
        self.stack = stack
        self.marker = marker

    @property
    def lines(self) -> list[str]:
        return self.stack.plugin_logs_since(self.marker)

    @property
    def messages(self) -> list[str]:
        """Just what the plugins said (the part after Envoy's "wasm log <plugin> ...: " prefix)."""
        return [m.group("message") for m in map(PLUGIN_LINE.search, self.lines) if m]

    def __iter__(self) -> Iterator[str]:
        return iter(self.lines)

    def __len__(self) -> int:
        return len(self.lines)

    def assert_logged(self, pattern: str | re.Pattern[str], timeout: float = LOG_TIMEOUT) -> str:
        """Wait until a plugin line matches `pattern` (re.search); return that line."""
        regex = re.compile(pattern)

        def found() -> str:
            hits = [line for line in self.lines if regex.search(line)]
            if not hits:
                raise NotYet("no line matches")
            return hits[0]

        try:
            return Deadline(timeout=timeout, interval=0.05).until(found, what=f"a plugin log line matching {regex.pattern!r}")
        except WaitTimeout:
            raise AssertionError(f"no plugin log line matches {regex.pattern!r} within {timeout:g} s; "
                                 f"the plugins logged:\n{_listing(self.lines)}") from None

    def assert_not_logged(self, pattern: str | re.Pattern[str]) -> None:
        """No plugin line logged so far matches `pattern` (re.search)."""
        regex = re.compile(pattern)
        hits = [line for line in self.lines if regex.search(line)]
        if hits:
            raise AssertionError(f"plugin log lines match {regex.pattern!r}:\n{_listing(hits)}")


def _listing(lines: list[str]) -> str:
    return "\n".join(f"  {line}" for line in lines) if lines else "  (nothing)"


def exchange_of(response: requests.Response, upstream: UpstreamRequest | None) -> Exchange:
    """A requests response and its journal entry as a probe.Exchange (for format_exchange below)."""
    sent = response.request
    body = sent.body.encode() if isinstance(sent.body, str) else sent.body
    return Exchange(
        method=sent.method or "", url=sent.url or "", request_headers=list(sent.headers.items()),
        request_body=body if isinstance(body, bytes) else None, status=response.status_code,
        response_headers={name.lower(): value for name, value in response.headers.items()},
        response_body=response.content, upstream=upstream.raw if upstream else None,
        seconds=response.elapsed.total_seconds(),
    )


def format_exchange(exchange) -> list[str]:
    """The response as the client got it and, below, the request as the backend received it."""
    out = [f"> {exchange.method} {exchange.url}", f"< {exchange.status}  ({exchange.seconds * 1000:.0f} ms)"]
    for name, value in exchange.response_headers.items():
        out.append(f"< {name}: {value}")
    body = exchange.response_text()
    doc = exchange.response_json()
    up = exchange.upstream
    if up is not None and isinstance(doc, dict) and doc.get("headers") == up.get("headers"):
        out += ["", "(the backend's echo of the request it received, shown below)"]
    elif doc is not None:
        out += ["", json.dumps(doc, indent=2, ensure_ascii=False)]
    elif body:
        out += ["", body.rstrip("\n")]
    out.append("")
    out += effects_lines(exchange)
    who = "backend"
    received_by = getattr(exchange, "received_by", None)
    if up is None and received_by not in (None, "backend"):
        up, who = exchange.received, f"service {received_by}"  # a route to a service: its mock's journal
    if up is None:
        out.append("backend received: nothing (the gateway answered without calling the backend or a service mock)")
        return out
    query = "&".join(f"{k}={v}" for k, vs in up.get("query", {}).items() for v in vs)
    matched = getattr(exchange, "matched_by", "")
    how = f"  (matched by {matched})" if matched and matched != "request id" else ""
    out.append(f"{who} received: {up['method']} {up['path']}{'?' + query if query else ''}{how}")
    for name, values in up.get("headers", {}).items():
        for value in values:
            out.append(f"  {name}: {value}")
    if up.get("body"):
        out += ["", "  " + up["body"].rstrip("\n").replace("\n", "\n  ")]
    return out


def effects_lines(exchange) -> list[str]:
    """Calls the plugin made to services, its log lines, and explanations of failed calls."""
    effects = exchange.effects
    if effects is None:
        return []
    out = []
    for service, calls in effects.service_calls.items():
        for call in calls:
            out.append(f"service {service} received: {call['method']} {call['path']} -> {call.get('status')}")
    for line in effects.plugin_lines[-10:]:
        # As `hlocal logs` shows it: `plugin-name: message`, without Envoy's prefix and the repeated name.
        out.append(f"plugin log: {short_plugin_line(line) or line.split('wasm log ', 1)[-1]}")
    for note in effects.notes:
        out.append(f"note: {note}")
    return out + [""] if out else out
