"""Send requests through the gateway and compare what came back and what the backend saw."""

from __future__ import annotations

import json as jsonlib
import uuid
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..config.project import Expect, Probe, Project, UpstreamExpect
from ..errors import ConfigError, EnvironmentProblem, McpCallFailed
from ..state import StackState, service_of
from ..mock.paths import MAX_BODY
from ..config.validate import check_request
from .mcpclient import gateway_mcp_url, McpClient, ToolResult
from .observe import no_response, Observation
from ..inspect.correlate import find_received, marks, mocks

REQUEST_ID_HEADER = "x-hlocal-request-id"


@dataclass
class Exchange:
    """One request: as sent, as answered, and as the backend received it (None: it never arrived)."""

    method: str
    url: str
    request_headers: list[tuple[str, str]]
    request_body: bytes | None
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    upstream: dict[str, Any] | None = None  # the journal entry (an exchanges.UpstreamRequest from Stack.request)
    seconds: float = 0.0
    effects: Any = None  # observe.Effects: plugin log lines, calls to services, explanations
    # Where the request went, wherever that was: the backend's or the route's service's journal entry
    # (`upstream` is the backend's only), which one, and how it was tied to this request.
    received: dict[str, Any] | None = None
    received_by: str | None = None  # "backend", a service name or `name[i]` (a replica); None: nothing received it
    matched_by: str = ""  # "request id", or a time-window explanation

    @property
    def path(self) -> str:
        return "/" + self.url.split("/", 3)[-1]

    def response_text(self) -> str:
        return self.response_body.decode("utf-8", errors="replace")

    def response_json(self) -> Any:
        try:
            return jsonlib.loads(self.response_body)
        except ValueError:
            return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": {"method": self.method, "url": self.url, "headers": self.request_headers,
                        "body": self.request_body.decode("utf-8", errors="replace") if self.request_body else None},
            "response": {"status": self.status, "headers": self.response_headers, "body": self.response_text()},
            "upstream": getattr(self.upstream, "raw", self.upstream),  # an UpstreamRequest's journal entry
            "received_by": self.received_by,
            "matched_by": self.matched_by or None,
            **({"received": self.received} if self.received_by not in (None, "backend") else {}),
            "seconds": round(self.seconds, 4),
            **({"plugin_logs": self.effects.plugin_lines, "service_calls": self.effects.service_calls,
                "notes": self.effects.notes} if self.effects is not None else {}),
        }


@dataclass
class Mismatch:
    what: str
    expected: Any
    actual: Any


@dataclass
class ProbeResult:
    name: str
    exchange: Exchange
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed,
                "mismatches": [m.__dict__ for m in self.mismatches], "exchange": self.exchange.to_dict()}


def send_request(state: StackState, method: str, path: str, headers: Sequence[tuple[str, str]] = (),
                 body: bytes | None = None, *, timeout: float = 30.0, observe: Project | None = None) -> Exchange:
    """Send one request through the gateway, tagged so the backend's journal entry can be found.

    http.client rather than requests: repeated headers must go out as separate lines (plugins
    such as the transformer's dedupe treat `X: 1, 2` and two `X` lines differently).
    """
    # What http.client would refuse with a traceback (or send as a second header line): refuse it here.
    check_request(method, path, headers)

    import http.client
    import socket
    import time

    request_id = uuid.uuid4().hex
    sent = [*headers, (REQUEST_ID_HEADER, request_id)]
    exchange = Exchange(method=method.upper(), url=state.gateway_url + path, request_headers=list(sent),
                        request_body=body)
    names = {name.lower() for name, _ in sent}
    observation = None
    if observe is not None:
        observation = Observation(observe, state)
    clients = mocks(state)
    since = marks(clients)
    conn = http.client.HTTPConnection("127.0.0.1", state.gateway_port, timeout=timeout)
    started = time.monotonic()
    accepted = False
    try:
        conn.connect()
        accepted = True
        conn.putrequest(exchange.method, path, skip_host="host" in names, skip_accept_encoding=True)
        for name, value in sent:
            conn.putheader(name, value)
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        exchange.response_body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        if body is not None and len(body) > MAX_BODY:  # the mock closes after refusing it: not a dead stack
            raise _body_too_large(len(body), MAX_BODY) from exc
        if accepted and isinstance(exc, (socket.timeout, TimeoutError)):
            raise no_response(exchange, timeout, observation) from None
        raise EnvironmentProblem(f"request to {exchange.url} failed: {exc}", "is the stack up? see `hlocal status`") from exc
    finally:
        conn.close()
    exchange.seconds = time.monotonic() - started
    exchange.status = response.status
    exchange.response_headers = _joined(response.getheaders())
    if response.status == 413 and exchange.response_headers.get(MOCK_ERROR_HEADER) == "body-too-large":
        raise _body_too_large(len(body or b""), _limit_of(exchange.response_body))
    if "backend" not in since:
        raise EnvironmentProblem(f"cannot read the backend journal at {state.control_url}", "see `hlocal status`")
    received = find_received(clients, since, request_id, exchange.method, path)
    if received is not None:
        exchange.received, exchange.received_by, exchange.matched_by = received.entry, received.where, received.matched_by
        if received.where == "backend":
            exchange.upstream = received.entry
    if observation is not None:
        exchange.effects = observation.finish()
        if received is not None and received.where != "backend":
            exchange.effects.notes.insert(0, f"the request went to service {received.where} (its route's "
                                             f"service:), not the backend: its journal has it as seq "
                                             f"{received.entry.get('seq')} (matched by {received.matched_by})")
        elif received is not None and received.matched_by != "request id":
            exchange.effects.notes.insert(0, f"backend entry: {received.matched_by}")
    return exchange


MOCK_ERROR_HEADER = "x-hlocal-mock-error"


def _body_too_large(size: int, limit: int) -> ConfigError:
    return ConfigError(
        f"the mock backend refuses request bodies over {limit:,} bytes ({limit // (1024 * 1024)} MiB); "
        f"this one has {size:,} bytes",
        "send a smaller body (the limit is the mock's, not Envoy's or your plugin's; see the README's mock section)")


def _limit_of(reply: bytes) -> int:
    try:
        return int(jsonlib.loads(reply).get("limit_bytes") or MAX_BODY)
    except (ValueError, AttributeError, TypeError):
        return MAX_BODY


def _joined(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Response headers by lower-case name; repeated ones joined with ', ' as HTTP allows."""
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def run_probe(state: StackState, probe: Probe, project: Project | None = None) -> ProbeResult:
    if probe.mcp is not None:
        return run_mcp_probe(state, probe)
    req = probe.request
    headers = [(name, v) for name, value in req.headers.items()
               for v in (value if isinstance(value, tuple) else (value,))]
    body = None
    if req.json is not None:
        body = jsonlib.dumps(req.json).encode()
        if "content-type" not in req.headers:
            headers.append(("content-type", "application/json"))
    elif req.body is not None:
        body = req.body.encode()
    if probe.expect.services:
        _check_service_expectations(probe, state, project)
    exchange = send_request(state, req.method, req.path, headers, body, observe=project)
    return ProbeResult(name=probe.name, exchange=exchange, mismatches=evaluate(probe.expect, exchange))


# -- mcp probes (config/mcp.py parses them) -----------------------------------------------------

def run_mcp_probe(state: StackState, probe: Probe) -> ProbeResult:
    """Call the probe's tool through the gateway; a ProbeResult whose exchange is the tools/call POST."""
    import time
    import uuid

    call = probe.mcp
    url = gateway_mcp_url(state.gateway_url, call.path)
    request_id = uuid.uuid4().hex
    clients = mocks(state)
    since = marks(clients)
    started = time.monotonic()
    failed = None
    with McpClient(url, headers={REQUEST_ID_HEADER: request_id}, timeout=call.timeout_s) as client:
        try:
            result = client.call_tool(call.tool, call.arguments)
        except McpCallFailed as exc:  # a JSON-RPC error is this probe's failure, not the whole run's
            failed, result = exc, ToolResult(tool=call.tool, arguments=call.arguments, is_error=True, text="")
        statuses = list(client.statuses)
    body = {"method": "tools/call", "params": {"name": call.tool, "arguments": call.arguments}}
    exchange = Exchange(method="POST", url=url, request_headers=[(REQUEST_ID_HEADER, request_id)],
                        request_body=jsonlib.dumps(body).encode(), status=statuses[-1] if statuses else 0,
                        response_body=jsonlib.dumps(result.result, ensure_ascii=False).encode(),
                        seconds=time.monotonic() - started)
    received = find_received(clients, since, request_id, "", "")
    if received is not None and received.matched_by == "request id":
        exchange.received, exchange.received_by, exchange.matched_by = received.entry, received.where, received.matched_by
        if received.where == "backend":
            exchange.upstream = received.entry
    if failed is not None:
        return ProbeResult(name=probe.name, exchange=exchange,
                           mismatches=[Mismatch("tool call", "a tool result", failed.message)])
    return ProbeResult(name=probe.name, exchange=exchange, mismatches=evaluate_tool_result(probe.expect, result,
                                                                                          exchange.upstream))


def evaluate_tool_result(expect: Expect, result: Any, upstream: dict[str, Any] | None) -> list[Mismatch]:
    """Every way the tool result (and what the backend received for it) differs from what was expected."""
    out = []
    if expect.is_error is not None and result.is_error != expect.is_error:
        out.append(Mismatch("tool isError", expect.is_error, result.is_error))
    if expect.text_contains is not None and expect.text_contains not in result.text:
        out.append(Mismatch("tool text", f"contains {expect.text_contains!r}", _short(result.text)))
    if expect.upstream is not None:
        out.extend(evaluate_upstream(expect.upstream, upstream))
    return out


def run_probes(project: Project, state: StackState, names: Sequence[str] = ()) -> list[ProbeResult]:
    if not project.probes:
        raise ConfigError(f"{project.file.name} has no probes", "add a `probes:` section (see README.md)")
    known = {p.name for p in project.probes}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"no probe named {unknown[0]!r}", f"probes: {', '.join(sorted(known))}")
    chosen = [p for p in project.probes if not names or p.name in names]
    return [run_probe(state, p, project) for p in chosen]


def evaluate(expect: Expect, exchange: Exchange) -> list[Mismatch]:
    """Every way the exchange differs from what was expected."""
    out: list[Mismatch] = []
    if expect.status is not None and exchange.status != expect.status:
        out.append(Mismatch("status", expect.status, exchange.status))
    for name, value in expect.headers.items():
        actual = exchange.response_headers.get(name)
        if actual != value:
            out.append(Mismatch(f"response header {name}", value, actual))
    for name in expect.headers_absent:
        if name in exchange.response_headers:
            out.append(Mismatch(f"response header {name}", "(absent)", exchange.response_headers[name]))
    if expect.body_contains is not None and expect.body_contains not in exchange.response_text():
        out.append(Mismatch("response body", f"contains {expect.body_contains!r}", _short(exchange.response_text())))
    if expect.json is not None and not json_subset(expect.json, exchange.response_json()):
        out.append(Mismatch("response json", expect.json, exchange.response_json()))
    if expect.upstream is not None:
        out.extend(evaluate_upstream(expect.upstream, exchange.upstream))
    for name, wanted in expect.services.items():
        out.extend(evaluate_service(name, wanted, service_received(exchange, name)))
    return out


def service_received(exchange: Exchange, name: str) -> list[dict[str, Any]]:
    """What service `name` received during the exchange: the plugins' calls to it and, when the
    route targets it, the forwarded request itself (a replicated service: what any replica received)."""
    by_label = exchange.effects.service_calls if exchange.effects is not None else {}
    mine = {label: c for label, c in by_label.items() if service_of(label) == name}
    calls = [c for cs in mine.values() for c in cs]
    where = exchange.received_by
    if exchange.received is not None and where is not None and service_of(where) == name \
            and exchange.received.get("seq") not in {c.get("seq") for c in mine.get(where, [])}:
        calls.append(exchange.received)  # without observation, the forwarded request alone
    return sorted(calls, key=lambda c: c.get("seq", 0))


def evaluate_service(name: str, expect: UpstreamExpect, calls: list[dict[str, Any]]) -> list[Mismatch]:
    """Passes when one of the calls satisfies every key; else the newest call's differences."""
    label = f"service {name}"
    if expect.received is False:
        return [Mismatch(label, "no request", f"{c['method']} {c['path']}") for c in calls[:1]]
    if not calls:
        return [Mismatch(label, "a request during the probe", "it received none")]
    found = [evaluate_upstream(expect, call) for call in calls]
    if any(not m for m in found):
        return []
    return [Mismatch(label + m.what[len("upstream"):], m.expected, m.actual) for m in found[-1]]


def _check_service_expectations(probe: Probe, state: StackState, project: Project | None) -> None:
    for name in probe.expect.services:
        where = f"probe {probe.name!r}: expect.services.{name}"
        plan = state.services.get(name)
        if plan is None:
            raise ConfigError(f"{where}: no service named {name!r}",
                              f"declared services: {', '.join(sorted(state.services)) or 'none'}")
        if plan.how != "mock":
            raise ConfigError(f"{where}: service {name!r} is not an hlocal mock ({plan.how}), so what it "
                              f"received cannot be seen", "drop the expectation, or let hlocal mock the service")
    if project is None:
        raise ConfigError(f"probe {probe.name!r} expects what services received, which needs the project",
                          "call run_probe(state, probe, project)")


def evaluate_upstream(expect: UpstreamExpect, entry: dict[str, Any] | None) -> list[Mismatch]:
    if expect.received is False:
        return [] if entry is None else [Mismatch("upstream", "no request", f"{entry['method']} {entry['path']}")]
    if entry is None:
        return [Mismatch("upstream", "the request to reach the backend", "it never arrived")]
    out: list[Mismatch] = []
    headers: dict[str, list[str]] = entry.get("headers", {})
    for name, value in expect.headers.items():
        if not _values_match(value, headers.get(name, [])):
            out.append(Mismatch(f"upstream header {name}", _show(value), _one(headers.get(name))))
    for name in expect.headers_absent:
        if name in headers:
            out.append(Mismatch(f"upstream header {name}", "(absent)", _one(headers[name])))
    if expect.method is not None and entry.get("method") != expect.method:
        out.append(Mismatch("upstream method", expect.method, entry.get("method")))
    if expect.path is not None and entry.get("path") != expect.path:
        out.append(Mismatch("upstream path", expect.path, entry.get("path")))
    query: dict[str, list[str]] = entry.get("query", {})
    for name, value in expect.query.items():
        if not _values_match(value, query.get(name, [])):
            out.append(Mismatch(f"upstream query {name}", _show(value), _one(query.get(name))))
    body = entry.get("body") or ""
    if expect.body_contains is not None and expect.body_contains not in body:
        out.append(Mismatch("upstream body", f"contains {expect.body_contains!r}", _short(body)))
    if expect.json is not None and not json_subset(expect.json, entry.get("json")):
        out.append(Mismatch("upstream json", expect.json, entry.get("json")))
    return out


def _values_match(expected: str | tuple[str, ...], received: list[str]) -> bool:
    """A string: one of the received values; a list: exactly the received values, in order."""
    if isinstance(expected, tuple):
        return list(expected) == received
    return expected in received


def _show(value: str | tuple[str, ...]) -> Any:
    return list(value) if isinstance(value, tuple) else value


def json_subset(expected: Any, actual: Any) -> bool:
    """Mappings match when every expected key matches; everything else must be equal."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and json_subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual  # JSON true is not 1
    return expected == actual


def _one(values: list[str] | None) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
