"""Read the files Envoy's tap filter writes in streaming mode: one JSON segment per event.

Each file is `<prefix>_<stream id>.json`, a sequence of pretty-printed JSON objects
`{"http_streamed_trace_segment": {"trace_id": ..., "request_headers" | "request_body_chunk" |
"request_trailers" | "response_headers" | "response_body_chunk" | "response_trailers": ...}}`
(envoyproxy/envoy api/envoy/data/tap/v3/http.proto, HttpStreamedTraceSegment). A file being
written may end inside a segment: what parses is used, the rest waits for the next read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIDES = ("client", "upstream")
MAX_FILE_BYTES = 8 * 1024 * 1024  # a tap file larger than this is read only this far


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


def split_name(path: Path) -> tuple[str, str] | None:
    """("client" | "upstream", stream id) from a tap file name; None for anything else."""
    if path.suffix != ".json":
        return None
    side, sep, stream = path.stem.partition("_")
    if not sep or side not in SIDES or not stream.isdigit():
        return None
    return side, stream


def segments(text: str) -> list[dict[str, Any]]:
    """The complete JSON objects at the start of `text` (a half-written tail is left out)."""
    decoder = json.JSONDecoder()
    out, index = [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return out
        try:
            item, index = decoder.raw_decode(text, index)
        except ValueError:
            return out
        out.append(item)


def read_trace(path: Path, stream: str, body_cap: int) -> Trace:
    """Fold a tap file's segments into request and response messages, bodies cut at `body_cap`."""
    with open(path, "rb") as handle:
        text = handle.read(MAX_FILE_BYTES).decode("utf-8", errors="replace")
    trace = Trace(stream=stream)
    for item in segments(text):
        fold(trace, item, body_cap)
    return trace


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
