"""Bytes on the wire: request bodies (content-length or chunked, streamed), response chunks, SSE frames."""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass

from .paths import KEEP_BODY, MAX_BODY, sse_frame  # noqa: F401 (re-exported: wire's public names)

MAX_LINE = 64 * 1024
MAX_TRAILERS = 100
_READ_SIZE = 256 * 1024

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BodyError(Exception):
    """The request body is framed wrongly or too large; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, limit: int | None = None, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.limit = limit
        self.size = size


class ClientGone(Exception):
    """The client closed the connection before sending the whole request."""


@dataclass
class Body:
    """A request body as the mock keeps it: the first `keep` bytes, the full size and, past that, a digest."""

    data: bytes
    size: int
    sha256: str | None = None  # only for a truncated body: what the mock saw but did not keep

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


class BodySink:
    """Collects a streamed body: keeps a prefix, counts everything, hashes once the prefix overflows."""

    def __init__(self, keep: int, limit: int) -> None:
        self.keep, self.limit = keep, limit
        self.size = 0
        self._parts: list[bytes] = []
        self._kept = 0
        self._hash: "hashlib._Hash | None" = None  # started only once the body outgrows `keep`

    def add(self, data: bytes) -> None:
        self.size += len(data)
        if self._hash is None and self.size > self.keep:
            self._hash = hashlib.sha256(b"".join(self._parts))
            self._hash.update(data)
        elif self._hash is not None:
            self._hash.update(data)
        if self._kept < self.keep:
            piece = data[: self.keep - self._kept]
            self._parts.append(piece)
            self._kept += len(piece)

    @property
    def over(self) -> bool:
        return self.size > self.limit

    def body(self) -> Body:
        data = b"".join(self._parts)
        return Body(data, self.size, self._hash.hexdigest() if self._hash is not None else None)


def too_large(size: int | None, limit: int) -> BodyError:
    what = f"request body of {size} bytes" if size is not None else "chunked request body"
    human = _human(limit)
    return BodyError(f"{what} exceeds the mock's body limit of {limit} bytes{f' ({human})' if human else ''}; "
                     "send less, or start the mock with a larger --max-body", 413, limit, size)


async def read_body(
    reader: asyncio.StreamReader, fields: dict[str, list[str]], keep: int, limit: int
) -> tuple[Body, list[tuple[str, str]]]:
    """Read the request body the headers announce; return what is kept of it and any chunked trailers.

    A body over `limit` is read to its end and dropped, then reported as BodyError 413: a client
    sends its whole body before it reads, and a connection closed on unread data reaches it as a
    reset instead of the 413. (With `Expect: 100-continue` the body is refused before it is sent.)
    """
    encodings = [
        coding.strip().lower()
        for value in fields.get("transfer-encoding", ())
        for coding in value.split(",")
        if coding.strip()
    ] if "transfer-encoding" in fields else None
    # Transfer-Encoding wins over Content-Length (RFC 9112 6.3), which closes a smuggling gap.
    if encodings:
        if encodings[-1] != "chunked":
            raise BodyError(f"unsupported transfer-encoding {', '.join(encodings)!r}", 501)
        sink = BodySink(keep, limit)
        trailers = await _read_chunked(reader, sink)
        return sink.body(), trailers
    if "content-length" not in fields:
        return Body(b"", 0), []  # most requests (a GET through the gateway): nothing more to do
    lengths = {value.strip() for value in fields["content-length"]}
    if not lengths:
        return Body(b"", 0), []
    if len(lengths) != 1 or not next(iter(lengths)).isdigit():
        raise BodyError(f"invalid content-length {sorted(lengths)!r}")
    length = int(next(iter(lengths)))
    if length > limit:
        await _drain(reader, length)
        raise too_large(length, limit)
    sink = BodySink(keep, limit)
    left = length
    while left:
        data = await reader.read(min(left, _READ_SIZE))
        if not data:
            raise ClientGone()
        sink.add(data)
        left -= len(data)
    return sink.body(), []


async def _drain(reader: asyncio.StreamReader, length: int) -> None:
    while length:
        data = await reader.read(min(length, _READ_SIZE))
        if not data:
            raise ClientGone()
        length -= len(data)


async def _read_chunked(reader: asyncio.StreamReader, sink: BodySink) -> list[tuple[str, str]]:
    """Decode a chunked body (RFC 9112 7.1): sized chunks, optional extensions, then trailers."""
    while True:
        line = await _read_line(reader)
        # Chunk extensions (";name=value") carry nothing the mock needs, so they are dropped.
        size_text = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise BodyError(f"invalid chunk size line {line[:40]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        left = size
        while left:
            data = await reader.read(min(left, _READ_SIZE))
            if not data:
                raise ClientGone()
            if not sink.over:
                sink.add(data)
            else:
                sink.size += len(data)  # draining: counted, not kept
            left -= len(data)
        if await _read_line(reader) != b"":
            raise BodyError("chunk data is not followed by CRLF")
    trailers = await _read_trailers(reader)
    if sink.over:
        raise too_large(None, sink.limit)
    return trailers


async def _read_trailers(reader: asyncio.StreamReader) -> list[tuple[str, str]]:
    """Read trailer fields up to the blank line that ends a chunked body."""
    trailers: list[tuple[str, str]] = []
    while True:
        line = await _read_line(reader)
        if not line:
            return trailers
        name, sep, value = line.partition(b":")
        if not sep or not name.strip():
            raise BodyError(f"invalid trailer line {line[:40]!r}")
        if len(trailers) >= MAX_TRAILERS:
            raise BodyError(f"more than {MAX_TRAILERS} trailer fields")
        trailers.append((name.decode("latin-1").strip(), value.decode("latin-1").strip()))


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    """Read one CRLF- (or LF-) terminated line, without its terminator."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise ClientGone() from None
    except asyncio.LimitOverrunError:
        raise BodyError(f"a line in the chunked body is longer than {MAX_LINE} bytes") from None
    return line.rstrip(b"\r\n")


def encode_chunk(data: bytes) -> bytes:
    """Frame one chunk of a chunked response."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def _human(size: int) -> str | None:
    """`1 GiB` for a whole number of GiB, MiB or KiB; None otherwise."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return None
