"""Read exactly one RESP value (RESP2 and RESP3) from a stream, keeping its raw bytes."""

from __future__ import annotations

import io
from typing import BinaryIO

LINE_TYPES = frozenset(b"+-:_,#(")  # one line: simple string, error, integer, null, double, bool, big number
BLOB_TYPES = frozenset(b"$!=")  # length-prefixed: bulk string, blob error, verbatim string
AGGREGATE_TYPES = frozenset(b"*~>")  # count-prefixed: array, set, push
PAIR_TYPES = frozenset(b"%|")  # count pairs: map, attribute
MAX_DEPTH = 64


class RespError(ValueError):
    """The bytes are not one well-formed RESP value."""


def _line(stream: BinaryIO, limit: int) -> bytes:
    line = stream.readline(limit + 2)
    if not line:
        raise EOFError("connection closed before a complete RESP value")
    if not line.endswith(b"\r\n"):
        raise RespError(f"RESP line not terminated by CRLF within {limit} bytes")
    return line


def read_value(stream: BinaryIO, *, max_line: int = 64 * 1024, max_blob: int = 512 * 1024 * 1024,
               depth: int = 0) -> bytes:
    """Return the raw bytes of the next RESP value; EOFError if the stream ends first."""
    if depth > MAX_DEPTH:
        raise RespError("RESP value nested too deeply")
    line = _line(stream, max_line)
    kind = line[0]
    if kind in LINE_TYPES:
        return line
    try:
        count = int(line[1:-2])
    except ValueError:
        raise RespError(f"bad RESP length line {line[:40]!r}") from None
    if kind in BLOB_TYPES:
        if count < 0:
            return line
        if count > max_blob:
            raise RespError(f"RESP blob of {count} bytes exceeds {max_blob}")
        payload = stream.read(count + 2)
        if len(payload) < count + 2:
            raise EOFError("connection closed inside a RESP blob")
        if payload[-2:] != b"\r\n":
            raise RespError("RESP blob not terminated by CRLF")
        return line + payload
    if kind in AGGREGATE_TYPES or kind in PAIR_TYPES:
        if count < 0:
            return line
        items = count * (2 if kind in PAIR_TYPES else 1)
        parts = [line] + [read_value(stream, max_line=max_line, max_blob=max_blob, depth=depth + 1)
                          for _ in range(items)]
        if kind == ord("|"):  # an attribute precedes the value it describes
            parts.append(read_value(stream, max_line=max_line, max_blob=max_blob, depth=depth + 1))
        return b"".join(parts)
    raise RespError(f"unknown RESP type byte {bytes([kind])!r}")


def one_command(data: bytes) -> bytes:
    """Check that `data` is exactly one RESP array of bulk strings (a command); return it."""
    if not data.startswith(b"*"):
        raise RespError("a Redis command must be a RESP array")
    stream = io.BytesIO(data)
    try:
        value = read_value(stream)
    except EOFError:
        raise RespError("incomplete RESP command") from None
    if stream.read(1):
        raise RespError("bytes after the RESP command")
    return value


def command(*args: str | bytes) -> bytes:
    """Encode a command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)
