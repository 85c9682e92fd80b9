"""Bytes on the wire: request bodies (content-length or chunked), response chunks, SSE frames."""

from __future__ import annotations

import re
from email.message import Message
from typing import BinaryIO

# Bounds keep a broken or hostile client from making the mock buffer without limit.
MAX_BODY = 64 * 1024 * 1024
MAX_LINE = 64 * 1024
MAX_TRAILERS = 100

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class BodyError(Exception):
    """The request body is framed wrongly; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The client closed the connection before sending the whole request."""


def read_body(rfile: BinaryIO, headers: Message) -> tuple[bytes, list[tuple[str, str]]]:
    """Read the request body the headers announce; return it with any chunked trailers."""
    encodings = [
        coding.strip().lower()
        for value in headers.get_all("transfer-encoding", [])
        for coding in value.split(",")
        if coding.strip()
    ]
    # Transfer-Encoding wins over Content-Length (RFC 9112 6.3), which closes a smuggling gap.
    if encodings:
        if encodings[-1] != "chunked":
            raise BodyError(f"unsupported transfer-encoding {', '.join(encodings)!r}", 501)
        return read_chunked(rfile)
    lengths = {value.strip() for value in headers.get_all("content-length", [])}
    if not lengths:
        return b"", []
    if len(lengths) != 1 or not next(iter(lengths)).isdigit():
        raise BodyError(f"invalid content-length {sorted(lengths)!r}")
    length = int(next(iter(lengths)))
    if length > MAX_BODY:
        raise BodyError(f"body of {length} bytes exceeds the mock's {MAX_BODY}-byte limit", 413)
    return _read_exact(rfile, length), []


def read_chunked(rfile: BinaryIO) -> tuple[bytes, list[tuple[str, str]]]:
    """Decode a chunked body (RFC 9112 7.1): sized chunks, optional extensions, then trailers."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = _read_line(rfile)
        # Chunk extensions (";name=value") carry nothing the mock needs, so they are dropped.
        size_text = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise BodyError(f"invalid chunk size line {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > MAX_BODY:
            raise BodyError(f"chunked body exceeds the mock's {MAX_BODY}-byte limit", 413)
        parts.append(_read_exact(rfile, size))
        if _read_line(rfile) != b"":
            raise BodyError("chunk data is not followed by CRLF")
    return b"".join(parts), _read_trailers(rfile)


def _read_trailers(rfile: BinaryIO) -> list[tuple[str, str]]:
    """Read trailer fields up to the blank line that ends a chunked body."""
    trailers: list[tuple[str, str]] = []
    while True:
        line = _read_line(rfile)
        if not line:
            return trailers
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise BodyError(f"invalid trailer line {line[:40]!r}")
        if len(trailers) >= MAX_TRAILERS:
            raise BodyError(f"more than {MAX_TRAILERS} trailer fields")
        trailers.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))


def _read_line(rfile: BinaryIO) -> bytes:
    """Read one CRLF- (or LF-) terminated line, without its terminator."""
    line = rfile.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise BodyError(f"a line in the chunked body is longer than {MAX_LINE} bytes")
    if not line.endswith(b"\n"):
        raise ClientGone()
    return line.rstrip(b"\r\n")


def _read_exact(rfile: BinaryIO, size: int) -> bytes:
    """Read exactly `size` bytes; a short read means the client hung up."""
    data = rfile.read(size) if size else b""
    if len(data) != size:
        raise ClientGone()
    return data


def encode_chunk(data: bytes) -> bytes:
    """Frame one chunk of a chunked response."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def sse_frame(
    data: str | None = None,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Format one server-sent event; multi-line data becomes several `data:` lines."""
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    if id is not None:
        lines.append(f"id: {id}")
    if retry is not None:
        lines.append(f"retry: {retry}")
    if data is not None:
        # SSE ends a line at CRLF, CR or LF, and only those; str.splitlines knows more breaks.
        lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode("utf-8")
