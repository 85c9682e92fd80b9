"""What the mock's clients share with it, without importing its asyncio server: the control API's
path prefix, the documented body limits, and the server-sent-event framing stubs use."""

from __future__ import annotations

import re

PREFIX = "/__hlocal"

# The documented body limit: a request body larger than this is answered 413 with a JSON error
# naming the limit. Bodies are streamed, not held, so it bounds the time spent on one request
# rather than memory; it stays at the 64 MiB the mock always had, and `--max-body` changes it.
MAX_BODY = 64 * 1024 * 1024
# How much of a body the echo reply and the journal keep; the rest is counted and hashed only.
KEEP_BODY = 1024 * 1024

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


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
