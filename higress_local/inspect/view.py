"""Where a stack's captures live, and how `hlocal inspect` shows them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from . import diff
from .store import Store, capture_switched_on
from ..errors import ConfigError, WaitTimeout
from ..system.wait import Deadline, NotYet

HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive", "x-request-id", "x-forwarded-proto",
              "x-forwarded-for", "x-envoy-external-address", "x-hlocal-request-id"}


def taps_dir(state_dir: Path) -> Path:
    """The inspector's folder as Layout.inspect_dir names it (set: capture on; the taps stream, writing nothing)."""
    return Path(state_dir) / "inspect" / "taps"


def capturing(state_dir: Path, inspect_dir: str | None) -> bool:
    """Whether the stack captures requests now: its taps are rendered (Layout.inspect_dir) and
    capture is switched on (gateway.inspect; `hlocal reload` switches it)."""
    return bool(inspect_dir) and capture_switched_on(Path(state_dir) / "inspect")


def store_dir(state_dir: Path) -> Path:
    """Where the collector keeps the ring of records."""
    return Path(state_dir) / "inspect" / "requests"


def list_row(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], "time": record.get("time"), "method": record.get("method"),
            "path": record.get("path"), "status": record.get("status"), "plugins": record.get("plugins", []),
            "changes": diff.summary(record)}


def format_list(records: list[dict[str, Any]]) -> list[str]:
    if not records:
        return ["no requests captured yet (send one through the gateway)"]
    out = [f"{'ID':>5}  {'TIME':<8}  {'METHOD':<6} {'PATH':<30} {'STATUS':>6}  {'PLUGINS':<16} CHANGES"]
    for row in map(list_row, records):
        stamp = time.strftime("%H:%M:%S", time.localtime(row["time"] or 0))
        plugins = ",".join(row["plugins"]) or "-"
        out.append(f"{row['id']:>5}  {stamp}  {row['method'] or '?':<6} {row['path'] or '?':<30} "
                   f"{row['status'] if row['status'] is not None else '-':>6}  {plugins:<16} {row['changes']}")
    return out


def _headers(message: dict[str, Any] | None, marks: dict[str, str]) -> list[str]:
    if message is None:
        return ["    (none)"]
    out = []
    for name, value in message.get("headers") or []:
        if name in diff.HIDDEN:
            continue
        out.append(f"  {marks.get(name, ' ')} {name}: {value}")
    body = message.get("body")
    if body:
        cut = " …(cut)" if message.get("body_truncated") else ""
        out.append("    " + body.rstrip("\n").replace("\n", "\n    ") + cut)
    return out


def _marks(header_diff: diff.HeaderDiff | None, side: str) -> dict[str, str]:
    if header_diff is None:
        return {}
    if side == "after":
        return {**{n: "+" for n, _ in header_diff.added}, **{n: "~" for n, _, _ in header_diff.changed}}
    return {**{n: "-" for n, _ in header_diff.removed}, **{n: "~" for n, _, _ in header_diff.changed}}


def format_record(record: dict[str, Any], plugin_logs: bool = True) -> list[str]:
    """The four views (marks: + added, - removed, ~ changed by the plugins), then the diff, logs and calls."""
    result = diff.analyse(record)
    req, resp = result.get("request_headers"), result.get("response_headers")
    out = [f"#{record['id']}  {record.get('method')} {record.get('path')} -> {record.get('status')}  "
           f"({_ms(record)})  x-request-id {record.get('request_id')}"]
    if record.get("sampled"):
        out.append(f"sampled: {record['sampled']}: requests not matching were not captured")
    out += ["", "1. request as the client sent it"] + _headers(record.get("client_request"), _marks(req, "before"))
    out += ["", "2. request as it left the plugins for the upstream"]
    if record.get("upstream_request") is None:
        out.append("    (never: the gateway answered without calling the upstream)")
    else:
        out += _headers(record["upstream_request"], _marks(req, "after"))
    received = record.get("received")
    if received:
        entry = received["entry"]
        out.append(f"   {received['where']} received {entry.get('method')} {entry.get('path')} "
                   f"(its journal, seq {entry.get('seq')}; matched by {received['matched_by']})")
    out += ["", "3. response as the upstream sent it"]
    out += _headers(record.get("upstream_response"), _marks(resp, "before")) if record.get("upstream_response") \
        else ["    (none)"]
    out += ["", "4. response as the client got it"] + _headers(record.get("client_response"), _marks(resp, "after"))
    out += ["", "changes: " + diff.summary(record)]
    out += _body_lines("request body", result.get("request_body"))
    out += _body_lines("response body", result.get("response_body"))
    if plugin_logs and record.get("plugin_logs"):
        out += ["", "plugin log lines:"]
        for line in record["plugin_logs"]:  # a panic's frames on the lines below its message
            head, _, frames = line["text"].partition("\n")
            out.append(f"  {line['plugin']}: {head}   [{line['matched_by']}]")
            out += [f"    {frame}" for frame in frames.split("\n") if frames]
    for name, calls in (record.get("service_calls") or {}).items():
        for call in calls:
            out.append(f"service {name} received: {call.get('method')} {call.get('path')} -> {call.get('status')}"
                       f"   [{call.get('matched_by')}]")
    if record.get("ai_log") is not None:
        out += ["", "ai_log: " + json.dumps(record["ai_log"], ensure_ascii=False)]
    return out


def _body_lines(label: str, body_diff: diff.BodyDiff | None) -> list[str]:
    if not body_diff or body_diff.kind != "json":
        return []
    out = [f"{label} (JSON, by key):"]
    out += [f"  + {path} = {json.dumps(value, ensure_ascii=False)}" for path, value in body_diff.added]
    out += [f"  - {path} (was {json.dumps(value, ensure_ascii=False)})" for path, value in body_diff.removed]
    out += [f"  ~ {path}: {json.dumps(a, ensure_ascii=False)} → {json.dumps(b, ensure_ascii=False)}"
            for path, a, b in body_diff.changed]
    return out


def _ms(record: dict[str, Any]) -> str:
    duration = (record.get("timings") or {}).get("duration_ms")
    return f"{duration:.0f} ms" if duration is not None else "time unknown"


def record_json(record: dict[str, Any]) -> dict[str, Any]:
    """A record plus its analysis, as `--json` and the web page get it."""
    result = diff.analyse(record)
    return {**record, "summary": diff.summary(record),
            "diff": {k: (v.to_dict() if hasattr(v, "to_dict") else v) for k, v in result.items()}}


def replay_request(record: dict[str, Any]) -> tuple[str, str, list[tuple[str, str]], bytes | None]:
    """method, path, headers, body of the client's original request, minus what the gateway adds."""
    sent = record.get("client_request")
    if not sent:
        raise ConfigError(f"request #{record.get('id')} has no captured client request", "pick another id")
    if sent.get("body_truncated"):
        raise ConfigError(f"request #{record.get('id')}'s body was cut at capture, so it cannot be replayed exactly",
                          "raise the capture's body limit, or send the request again yourself")
    pairs = [(n, v) for n, v in sent.get("headers") or []]
    method = next((v for n, v in pairs if n == ":method"), "GET")
    path = next((v for n, v in pairs if n == ":path"), "/")
    authority = next((v for n, v in pairs if n == ":authority"), None)
    headers = [(n, v) for n, v in pairs if not n.startswith(":") and n not in HOP_BY_HOP]
    if authority and not any(n == "host" for n, _ in headers):
        headers.insert(0, ("host", authority))
    body = sent.get("body") or None
    return method, path, headers, body.encode() if body is not None else None


def record_for_request(state_dir: Path, request_id: str, timeout: float = 3.0) -> dict[str, Any] | None:
    """The captured record of the request tagged `x-hlocal-request-id: request_id` (hlocal's clients
    tag every request), waiting up to `timeout` for the collector (it records a request about a
    second after it ends); None when capture is off or the record never came."""
    store = Store(store_dir(state_dir))
    if not store.directory.is_dir():
        return None
    return stored_record(store, request_id, timeout)


def stored_record(store: Any, request_id: str, timeout: float) -> dict[str, Any] | None:
    """The record in `store` of the request tagged `request_id`, waiting up to `timeout`; None if it never came."""
    def find() -> dict[str, Any]:
        for record in store.recent(limit=100):
            headers = (record.get("client_request") or {}).get("headers") or []
            if ["x-hlocal-request-id", request_id] in headers:
                return record
        raise NotYet("not recorded yet")

    try:
        return Deadline(timeout=timeout, interval=0.1).until(find, what=f"request {request_id} in the inspector")
    except WaitTimeout:
        return None
