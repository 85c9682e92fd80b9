"""What changed between two views of one request: headers, JSON bodies by key, status."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# hlocal's own tags: never a plugin's doing, never shown as a change. The status is compared on its own.
HIDDEN = ("x-hlocal-request-id",)
NOT_HEADERS = (":status",)
MISSING = object()


@dataclass
class HeaderDiff:
    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # name, before, after

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_dict(self) -> dict[str, Any]:
        return {"added": [list(p) for p in self.added], "removed": [list(p) for p in self.removed],
                "changed": [list(c) for c in self.changed]}


@dataclass
class BodyDiff:
    kind: str  # "same" | "json" | "text" | "none"
    added: list[tuple[str, Any]] = field(default_factory=list)  # JSON paths
    removed: list[tuple[str, Any]] = field(default_factory=list)
    changed: list[tuple[str, Any, Any]] = field(default_factory=list)
    sizes: tuple[int, int] = (0, 0)

    def __bool__(self) -> bool:
        return self.kind in ("json", "text")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "added": [list(p) for p in self.added], "removed": [list(p) for p in self.removed],
                "changed": [list(c) for c in self.changed], "sizes": list(self.sizes)}


def _grouped(pairs: list[list[str]] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs or []:
        name = name.lower()
        if name in HIDDEN or name in NOT_HEADERS:
            continue
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def headers(before: list[list[str]] | None, after: list[list[str]] | None) -> HeaderDiff:
    old, new = _grouped(before), _grouped(after)
    diff = HeaderDiff()
    for name, value in new.items():
        if name not in old:
            diff.added.append((name, value))
        elif old[name] != value:
            diff.changed.append((name, old[name], value))
    diff.removed = [(name, value) for name, value in old.items() if name not in new]
    return diff


def _json(text: str | None) -> Any:
    if not text:
        return MISSING
    try:
        return json.loads(text)
    except ValueError:
        return MISSING


def body(before: dict[str, Any] | None, after: dict[str, Any] | None) -> BodyDiff:
    old_text = (before or {}).get("body") or ""
    new_text = (after or {}).get("body") or ""
    sizes = (len(old_text), len(new_text))
    if old_text == new_text:
        return BodyDiff("same" if old_text else "none", sizes=sizes)
    old, new = _json(old_text), _json(new_text)
    if isinstance(old, (dict, list)) and isinstance(new, (dict, list)):
        diff = BodyDiff("json", sizes=sizes)
        _walk(old, new, "", diff)
        return diff
    return BodyDiff("text", sizes=sizes)


def _walk(old: Any, new: Any, path: str, diff: BodyDiff) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in new:
            where = f"{path}.{key}" if path else str(key)
            if key not in old:
                diff.added.append((where, new[key]))
            else:
                _walk(old[key], new[key], where, diff)
        diff.removed += [(f"{path}.{key}" if path else str(key), old[key]) for key in old if key not in new]
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new)):
            _walk(a, b, f"{path}[{index}]", diff)
        return
    if old != new or type(old) is not type(new):
        diff.changed.append((path or "(whole body)", old, new))


def status_of(message: dict[str, Any] | None) -> int | None:
    for name, value in (message or {}).get("headers") or []:
        if name == ":status":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def analyse(record: dict[str, Any]) -> dict[str, Any]:
    """The request's and the response's changes across the plugin chain."""
    client_req, up_req = record.get("client_request"), record.get("upstream_request")
    up_resp, client_resp = record.get("upstream_response"), record.get("client_response")
    out: dict[str, Any] = {"answered_by_gateway": up_req is None and client_resp is not None}
    if up_req is not None:
        out["request_headers"] = headers(client_req and client_req["headers"], up_req["headers"])
        out["request_body"] = body(client_req, up_req)
    if up_resp is not None and client_resp is not None:
        out["response_headers"] = headers(up_resp["headers"], client_resp["headers"])
        out["response_body"] = body(up_resp, client_resp)
    out["status"] = (status_of(up_resp), status_of(client_resp))
    return out


def summary(record: dict[str, Any]) -> str:
    """One line: what the plugins changed."""
    result = analyse(record)
    parts = []
    if result["answered_by_gateway"]:
        parts.append(f"answered by the gateway ({result['status'][1]}), upstream not called")
    for label, key in (("req", "request_headers"), ("resp", "response_headers")):
        diff = result.get(key)
        if diff:
            marks = ([f"+{n}" for n, _ in diff.added] + [f"-{n}" for n, _ in diff.removed]
                     + [f"~{n}" for n, _, _ in diff.changed])
            parts.append(f"{label} " + " ".join(marks))
    for label, key in (("req body", "request_body"), ("resp body", "response_body")):
        diff = result.get(key)
        if diff and diff.kind == "json":
            marks = ([f"+{p}" for p, _ in diff.added] + [f"-{p}" for p, _ in diff.removed]
                     + [f"~{p}" for p, _, _ in diff.changed])
            parts.append(f"{label} " + " ".join(marks))
        elif diff:
            parts.append(f"{label} changed ({diff.sizes[0]} → {diff.sizes[1]} bytes)")
    before, after = result["status"]
    if before is not None and after is not None and before != after:
        parts.append(f"status {before} → {after}")
    return "; ".join(parts) or "no change"
