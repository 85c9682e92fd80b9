"""The backend port: journal each request, then answer from the first matching stub or echo it."""

from __future__ import annotations

import json

from . import wire
from .base import BaseHandler, has_body
from .echo import describe
from .stubs import Response, Stub

_ECHO = Response(content_type="application/json", echo=True)


class BackendHandler(BaseHandler):
    """Serves the port the gateway proxies to."""

    def serve(self, body: bytes, trailers: list[tuple[str, str]]) -> None:
        request = describe(self.command, self.path, self.request_version, self.headers.items(), body, trailers)
        # Read the stub set once: a concurrent PUT swaps the whole set, so this request
        # sees either the old stubs or the new ones, never a mix.
        stub: Stub | None = self.state.stubs.find(request)
        respond = stub.respond if stub else _ECHO
        # Journal before replying, so a client holding the reply always finds its entry.
        self.state.journal.record(request, stub.index if stub else None, respond.status, self.arrived)
        try:
            if respond.delay_ms and not self.state.pause(respond.delay_ms):
                self.close_connection = True
                return
            if respond.events is not None:
                self._stream(respond)
            else:
                payload = json.dumps(request).encode("utf-8") if respond.echo else respond.body
                self.send_bytes(respond.status, payload, respond.headers, respond.content_type)
        finally:
            matched = f" stub[{stub.index}]" if stub else ""
            self.state.log(
                f"{self.state.name} {self.command} {request['path']} {respond.status} "
                f"{self.elapsed_ms():.1f}ms{matched}"
            )

    def _stream(self, respond: Response) -> None:
        """Send SSE frames one chunk each, pausing interval_ms between them."""
        if not has_body(respond.status):
            self.send_bytes(respond.status, b"", respond.headers)
            return
        # HTTP/1.0 has no chunked encoding: end the stream by closing the connection instead.
        chunked = self.request_version != "HTTP/1.0"
        framing = [("Transfer-Encoding", "chunked")] if chunked else [("Connection", "close")]
        self.send_head(
            respond.status,
            [*respond.headers, *framing],
            respond.content_type,
            defaults=[("Cache-Control", "no-cache")],
        )
        if self.command == "HEAD":
            return
        for number, frame in enumerate(respond.events or ()):
            if number and respond.interval_ms and not self.state.pause(respond.interval_ms):
                self.close_connection = True  # stopping: cut the stream short
                return
            self.wfile.write(wire.encode_chunk(frame) if chunked else frame)
            self.wfile.flush()
        if chunked:
            self.wfile.write(wire.LAST_CHUNK)
        else:
            self.close_connection = True
