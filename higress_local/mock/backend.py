"""The backend port: journal each request, then answer from the first matching stub or echo it."""

from __future__ import annotations

import asyncio
import json

from . import wire
from .base import Reply, Request, has_body
from .echo import describe
from .state import MockState
from .stubs import Response, Stub

_ECHO = Response(content_type="application/json", echo=True)
# json.dumps with its defaults, less the check for reference cycles: an echo document (describe)
# is a fresh tree and cannot hold one, and the check cost a sixth of the encoding.
_encode_echo = json.JSONEncoder(check_circular=False).encode


async def serve_backend(
    state: MockState, request: Request, body: wire.Body, trailers: list[tuple[str, str]], reply: Reply
) -> None:
    """Answer one request on the port the gateway proxies to."""
    doc = describe(request.method, request.target, request.version, request.fields, body, trailers)
    # Read the stub set once: a concurrent PUT swaps the whole set, so this request
    # sees either the old stubs or the new ones, never a mix.
    stub: Stub | None = state.stubs.find(doc)
    respond = stub.respond if stub else _ECHO
    # Journal before replying, so a client holding the reply always finds its entry.
    state.journal.record(doc, stub.index if stub else None, respond.status, request.arrived)
    try:
        if respond.delay_ms:
            await asyncio.sleep(respond.delay_ms / 1000)  # cancelled when the mock stops
        if respond.events is not None:
            await _stream(respond, request, reply)
        else:
            payload = _encode_echo(doc).encode("utf-8") if respond.echo else respond.body
            await reply.send_bytes(respond.status, payload, respond.headers, respond.content_type)
    finally:
        if not state.quiet:
            matched = f" stub[{stub.index}]" if stub else ""
            state.log(f"{state.name} {request.method} {doc['path']} {respond.status} "
                      f"{request.elapsed_ms():.1f}ms{matched}")


async def _stream(respond: Response, request: Request, reply: Reply) -> None:
    """Send SSE frames one chunk each, pausing interval_ms between them."""
    if not has_body(respond.status):
        await reply.send_bytes(respond.status, b"", respond.headers)
        return
    # HTTP/1.0 has no chunked encoding: end the stream by closing the connection instead.
    chunked = request.version != "HTTP/1.0"
    if not chunked:
        reply.close = True
    await reply.send_head(
        respond.status,
        [*respond.headers, *([("Transfer-Encoding", "chunked")] if chunked else [])],
        respond.content_type,
        defaults=[("Cache-Control", "no-cache")],
    )
    if request.method == "HEAD":
        return
    for number, frame in enumerate(respond.events or ()):
        if number and respond.interval_ms:
            await asyncio.sleep(respond.interval_ms / 1000)
        await reply.write(wire.encode_chunk(frame) if chunked else frame)
    if chunked:
        await reply.write(wire.LAST_CHUNK)
