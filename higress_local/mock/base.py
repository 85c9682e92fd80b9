"""HTTP/1.1 over asyncio streams, shared by the backend and control ports.

One event loop serves every connection: under 200 keep-alive connections from Envoy, a thread per
connection spent most of its time handing the GIL around (4.7k req/s at one full core); the loop
answers the same load with a fraction of that. Handlers are coroutines, so a stub's delay or an
SSE interval waits without holding anything up.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
import traceback
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Awaitable, Callable, Iterable

from . import wire
from .echo import repair_utf8
from .state import MockState

SERVER_NAME = "hlocal-mock"
# Longest request head (request line + headers) and longest chunk-size line; also the stream
# buffer size, so a client cannot make the mock buffer more than twice this per connection.
HEAD_LIMIT = wire.MAX_LINE
MAX_HEADERS = 100
# Marks the mock's own error replies, so a client can tell them from a plugin's or Envoy's.
ERROR_HEADER = "X-Hlocal-Mock-Error"

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"))


class HttpError(Exception):
    """A request the mock cannot parse; answered with `status` and a JSON error, then the connection closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Request:
    """A parsed request head."""

    method: str
    target: str
    version: str
    fields: dict[str, list[str]]  # lowercase name -> values in arrival order
    keep_alive: bool
    arrived: float  # wall clock, for the journal
    started: float  # monotonic, for the log line

    def elapsed_ms(self) -> float:
        """Milliseconds since the head was read."""
        return (time.monotonic() - self.started) * 1000

    def header(self, name: str) -> str | None:
        """The last value of a header, or None."""
        values = self.fields.get(name)
        return values[-1] if values else None


Handler = Callable[[MockState, Request, wire.Body, list[tuple[str, str]], "Reply"], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """Read one request head; None when the client closed the connection between requests."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise wire.ClientGone() from None
        return None
    except asyncio.LimitOverrunError:
        raise HttpError(431, f"request head is longer than {HEAD_LIMIT} bytes") from None
    return parse_head(raw)


def parse_head(raw: bytes) -> Request | None:
    """Parse a request head ending in a blank line; None when it holds only blank lines."""
    arrived, started = time.time(), time.monotonic()
    # Decoded once, as latin-1 (one byte, one character), and split as text: a decode per line
    # and per header cost more than the rest of the parsing.
    lines = raw[:-4].decode("latin-1").split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # RFC 9112 2.2: ignore empty lines before the request line
    if not lines:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[1] or (parts[0] not in _METHODS and not _TOKEN.fullmatch(parts[0])):
        raise HttpError(400, f"bad request line {_raw(lines[0])!r}")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505 if version.startswith("HTTP/") else 400, f"unsupported HTTP version {version!r}")
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, f"more than {MAX_HEADERS} header fields")
    fields: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise HttpError(400, f"bad header line {_raw(line)!r}")
        lower = _NAMES.get(name) or _checked_name(name, line)
        value = value.strip(" \t")
        # As echo.group_fields, in the same pass (this loop runs for every header of every request).
        fields.setdefault(lower, []).append(value if value.isascii() else repair_utf8(value))
    connection = fields.get("connection")
    if connection is None:  # as a gateway sends its requests
        keep_alive = version == "HTTP/1.1"
    else:
        tokens = {token.strip().lower() for value in connection for token in value.split(",")}
        keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
    return Request(method, target, version, fields, keep_alive, arrived, started)


# Header names already checked, as sent -> lowercase. A gateway sends the same few names on every
# request, and a regex match per header line was the largest part of parsing a head. Bounded, so
# a client inventing names cannot grow it; past the bound a new name is just checked each time.
_NAMES: dict[str, str] = {}
_NAMES_KEPT = 1024


def _checked_name(name: str, line: str) -> str:
    """The lowercase name of a header field; HttpError unless it is a token."""
    # Also refuses obsolete line folding (a line starting with whitespace, RFC 9112 5.2).
    if not _TOKEN.fullmatch(name):
        raise HttpError(400, f"bad header line {_raw(line)!r}")
    lower = name.lower()
    if len(_NAMES) < _NAMES_KEPT:
        _NAMES[name] = lower
    return lower


class Reply:
    """Writes the reply to one request; `close` set means the connection ends after it."""

    __slots__ = ("writer", "request", "close")

    def __init__(self, writer: asyncio.StreamWriter, request: Request | None) -> None:
        self.writer = writer
        self.request = request
        self.close = request is None or not request.keep_alive

    async def send_head(
        self,
        status: int,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str | None = None,
        length: int | None = None,
        defaults: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        """Send the status line, headers and (optionally) the body in one write.

        `defaults` only apply where `headers` lacks that name.
        """
        if headers or defaults:
            head = self._head(status, list(headers), content_type, length, defaults)
        else:  # an echo or an error reply: its head up to Date is the same all second long
            head = _plain_head(status, content_type) + self._end_of_head(length)
        self.writer.write(head + body if body else head)
        await self.writer.drain()

    def _head(
        self,
        status: int,
        headers: list[tuple[str, str]],
        content_type: str | None,
        length: int | None,
        defaults: Iterable[tuple[str, str]],
    ) -> bytes:
        """The reply head with the given headers (see send_head)."""
        given = {name.lower() for name, _ in headers} if headers else ()
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if content_type and "content-type" not in given:
            lines.append(f"Content-Type: {content_type}")
        if "server" not in given:
            lines.append(f"Server: {SERVER_NAME}")
        if "date" not in given:
            lines.append(f"Date: {_http_date()}")
        lines += [f"{name}: {value}" for name, value in defaults if name.lower() not in given]
        return _encode_head("\r\n".join(lines) + "\r\n") + self._end_of_head(length)

    def _end_of_head(self, length: int | None) -> bytes:
        """Content-Length and Connection, which end every head, and the blank line."""
        text = "" if length is None else f"Content-Length: {length}\r\n"
        if self.close:
            text += "Connection: close\r\n"
        elif self.request is not None and self.request.version == "HTTP/1.0":
            text += "Connection: keep-alive\r\n"
        return (text + "\r\n").encode("ascii")

    async def send_bytes(
        self,
        status: int,
        body: bytes,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str | None = None,
    ) -> None:
        """Send a complete reply with Content-Length, so the connection stays reusable."""
        if not has_body(status):
            await self.send_head(status, headers)  # no body, so no Content-Type or Content-Length either
            return
        is_head = self.request is not None and self.request.method == "HEAD"
        await self.send_head(status, headers, content_type, len(body), body=b"" if is_head else body)

    async def send_json(self, status: int, doc: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send a JSON reply."""
        await self.send_bytes(status, json.dumps(doc).encode("utf-8"), headers, "application/json")

    async def write(self, data: bytes) -> None:
        """Send more of a streamed body."""
        self.writer.write(data)
        await self.writer.drain()


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    state: MockState,
    handler: Handler,
    keep_body: int,
    max_body: int,
) -> None:
    """Serve requests on one connection until the client or a reply closes it.

    Bodies up to `max_body` are read; their first `keep_body` bytes reach the handler.
    """
    try:
        while True:
            try:
                request = await read_request(reader)
            except HttpError as exc:
                state.log(f"{state.name} {_peer(writer)} {exc.status} {exc}")
                await Reply(writer, None).send_json(exc.status, {"error": str(exc)})
                return
            if request is None:
                return
            reply = Reply(writer, request)
            try:
                await _continue(request, writer, max_body)
                body, trailers = await wire.read_body(reader, request.fields, keep_body, max_body)
            except wire.BodyError as exc:
                # The body framing is unknown now (or the rest was not read), so the connection ends here.
                reply.close = True
                await reply.send_json(exc.status, body_error(exc), body_error_headers(exc))
                state.log(f"{state.name} {request.method} {request.target} {exc.status} {exc}")
                return
            await handler(state, request, body, trailers, reply)
            if reply.close:
                return
    except (wire.ClientGone, ConnectionError, asyncio.IncompleteReadError):
        pass  # The client hung up mid-request or mid-reply; nothing is left to answer.
    except Exception:  # noqa: BLE001 - a bug must cost one connection, not the mock
        report_internal_error(state)
    finally:
        writer.close()


def report_internal_error(state: MockState) -> None:
    """Print the exception being handled: a bug that cost one connection.

    Logged even when quiet: this is the mock failing, not a request line.
    """
    sys.stderr.write(f"{state.name}: internal error, connection closed\n{traceback.format_exc()}")
    sys.stderr.flush()


async def _continue(request: Request, writer: asyncio.StreamWriter, max_body: int) -> None:
    """Answer `Expect: 100-continue`, or refuse a declared body over the limit before it is sent."""
    if request.version != "HTTP/1.1" or (request.header("expect") or "").lower() != "100-continue":
        return
    length = request.header("content-length")
    if length is not None and length.strip().isdigit() and int(length) > max_body:
        raise wire.too_large(int(length), max_body)
    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


def body_error(exc: wire.BodyError) -> dict[str, Any]:
    """The JSON document of a body error; a 413 names the limit."""
    doc: dict[str, Any] = {"error": str(exc)}
    if exc.status == 413:
        doc.update(kind="body_too_large", limit_bytes=exc.limit, body_bytes=exc.size)
    return doc


def body_error_headers(exc: wire.BodyError) -> list[tuple[str, str]]:
    return [(ERROR_HEADER, "body-too-large")] if exc.status == 413 else [(ERROR_HEADER, "bad-request-body")]


def has_body(status: int) -> bool:
    """Whether a reply with this status may carry a body (not 1xx, 204 or 304)."""
    return status >= 200 and status not in (204, 304)


_date_cache: tuple[int, str] = (0, "")


def _http_date() -> str:
    """The Date header value, formatted once per second (formatdate costs more than the rest of a reply)."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


_plain_heads: tuple[str, dict[tuple[int, str | None], bytes]] = ("", {})
_PLAIN_HEADS_KEPT = 64


def _plain_head(status: int, content_type: str | None) -> bytes:
    """Status line, Content-Type, Server and Date of a reply with no other headers; built once a second."""
    global _plain_heads
    date = _http_date()
    if _plain_heads[0] != date:
        _plain_heads = (date, {})
    heads = _plain_heads[1]
    head = heads.get((status, content_type))
    if head is None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}"]
        if content_type:
            lines.append(f"Content-Type: {content_type}")
        lines += [f"Server: {SERVER_NAME}", f"Date: {date}"]
        head = _encode_head("\r\n".join(lines) + "\r\n")
        if len(heads) < _PLAIN_HEADS_KEPT:  # bounded: stubs can name many statuses and types
            heads[(status, content_type)] = head
    return head


def _encode_head(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")  # a stub header value beyond latin-1: send its UTF-8 bytes


def _raw(line: str) -> bytes:
    """The first 80 bytes of a head line as received (for error messages)."""
    return line.encode("latin-1")[:80]


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return str(peer[0]) if peer else "-"
