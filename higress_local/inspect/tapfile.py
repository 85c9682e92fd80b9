"""Fold what Envoy's tap filter streams, one JSON segment per event, into messages.

Each segment is `{"http_streamed_trace_segment": {"trace_id": ..., "request_headers" |
"request_body_chunk" | "request_trailers" | "response_headers" | "response_body_chunk" |
"response_trailers": ...}}` (envoyproxy/envoy api/envoy/data/tap/v3/http.proto,
HttpStreamedTraceSegment); tapstream.py reads them from the admin session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Message:
    """One direction of one hop: headers in arrival order, the body's kept text, trailers."""

    headers: list[list[str]] = field(default_factory=list)
    body: str = ""
    body_truncated: bool = False
    body_chunks: int = 0
    trailers: list[list[str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"headers": self.headers, "body": self.body, "body_truncated": self.body_truncated,
                "trailers": self.trailers}


@dataclass
class Trace:
    """What one tap saw of one stream."""

    stream: str
    request: Message | None = None
    response: Message | None = None


def fold(trace: Trace, item: dict[str, Any], body_cap: int) -> None:
    """Add one streamed segment (from a file or the admin stream) to `trace`, bodies cut at `body_cap`."""
    seg = item.get("http_streamed_trace_segment") or {}
    for kind, value in seg.items():
        if kind == "trace_id":
            continue
        direction, _, part = kind.partition("_")
        if direction not in ("request", "response"):
            continue
        message = _message(trace, direction)
        if part == "headers":
            message.headers = _pairs(value)
        elif part == "trailers":
            message.trailers = _pairs(value)
        elif part == "body_chunk":
            message.body_chunks += 1
            chunk = value.get("as_string")
            if chunk is None:  # bytes that are not text come base64-encoded
                chunk = f"[{len(value.get('as_bytes') or '') * 3 // 4} bytes, not text]"
            room = body_cap - len(message.body)
            if len(chunk) > room or value.get("truncated"):
                message.body_truncated = True
            message.body += chunk[:max(room, 0)]


def _message(trace: Trace, direction: str) -> Message:
    if getattr(trace, direction) is None:
        setattr(trace, direction, Message())
    return getattr(trace, direction)


def _pairs(value: dict[str, Any]) -> list[list[str]]:
    return [[h.get("key", ""), h.get("value", "")] for h in value.get("headers") or []]
