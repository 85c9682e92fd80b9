"""HTTP/1.1 plumbing shared by the backend and control servers."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

from . import wire
from .state import MockState

SERVER_NAME = "hlocal-mock"


class TrackingServer(ThreadingHTTPServer):
    """A threading HTTP server that can close its open keep-alive connections on stop."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: MockState) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.state = state
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn, a reverse DNS lookup that can stall
        # for seconds in containers without DNS; the mock never needs the name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open connection, waking handler threads parked on keep-alive reads."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # Already closed by the peer.


class BaseHandler(BaseHTTPRequestHandler):
    """Reads the body for any method, then hands the request to `serve`."""

    protocol_version = "HTTP/1.1"  # keep-alive: Envoy pools its upstream connections
    # Replies go out in several small writes (head, body, SSE frames); with Nagle on, each
    # later write can sit waiting for a delayed ACK of the previous one (~40 ms).
    disable_nagle_algorithm = True
    server: TrackingServer

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler dispatches to do_<METHOD>; answering every name lets the
        # mock accept any method a plugin forwards (PURGE, PROPFIND, ...), not just a fixed list.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    @property
    def state(self) -> MockState:
        """The mock this connection belongs to."""
        return self.server.state

    def handle(self) -> None:
        try:
            super().handle()
        except ConnectionError:
            pass  # The client hung up mid-reply; nothing is left to answer.

    def _dispatch(self) -> None:
        self.started = time.monotonic()
        self.arrived = time.time()
        try:
            body, trailers = wire.read_body(self.rfile, self.headers)
        except wire.ClientGone:
            self.close_connection = True
            return
        except wire.BodyError as exc:
            # The body framing is unknown now, so the connection cannot carry another request.
            self.close_connection = True
            self.send_json(exc.status, {"error": str(exc)}, [("Connection", "close")])
            return
        self.serve(body, trailers)

    def serve(self, body: bytes, trailers: list[tuple[str, str]]) -> None:
        """Answer one request whose body has been read."""
        raise NotImplementedError

    def elapsed_ms(self) -> float:
        """Milliseconds since this request's headers were read."""
        return (time.monotonic() - self.started) * 1000

    def send_head(
        self,
        status: int,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str | None = None,
        length: int | None = None,
        defaults: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Send the status line and headers; `defaults` only apply where `headers` lacks a name."""
        headers = list(headers)
        given = {name.lower() for name, _ in headers}
        extra = [("Content-Type", content_type)] if content_type else []
        extra += [("Server", SERVER_NAME), ("Date", self.date_time_string()), *defaults]
        self.send_response_only(status)
        for name, value in headers + [(n, v) for n, v in extra if n.lower() not in given]:
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def send_bytes(
        self,
        status: int,
        body: bytes,
        headers: Iterable[tuple[str, str]] = (),
        content_type: str | None = None,
    ) -> None:
        """Send a complete reply with Content-Length, so the connection stays reusable."""
        if not has_body(status):
            self.send_head(status, headers)  # no body, so no Content-Type or Content-Length either
            return
        self.send_head(status, headers, content_type, len(body))
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, doc: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send a JSON reply."""
        self.send_bytes(status, json.dumps(doc).encode("utf-8"), headers, "application/json")

    def version_string(self) -> str:
        return SERVER_NAME

    def log_message(self, format: str, *args: Any) -> None:
        # Reached only for requests the stdlib rejects itself (bad request line or headers).
        self.state.log(f"{self.state.name} {self.address_string()} {format % args}")


def has_body(status: int) -> bool:
    """Whether a reply with this status may carry a body (not 1xx, 204 or 304)."""
    return status >= 200 and status not in (204, 304)
