"""The session process: MCP's SSE transport in front of the wasm MCP servers, as Higress's mcp-session.

Envoy sends it every request whose path ends with the SSE suffix and every request carrying a
`sessionId` query parameter (render/mcp_session.py), with the plugins switched off on that route,
because on Higress mcp-session runs before every wasm plugin (it is inserted right after the cors
filter, alibaba/higress pkg/ingress/kube/configmap/mcp_server.go). For each request (filter.go,
common/sse.go of plugins/golang-filter/mcp-session):

- no match_list rule for its authority and path: sent on through the gateway untouched;
- `GET <path><suffix>`: a session; 200 `text/event-stream`, first `event: endpoint` whose data is
  `<path>?sessionId=<uuid>` (the SSE request's own query kept, keys sorted as Go's url.Values
  encodes them), then a JSON-RPC `ping` request as `event: message` every 5 s;
- any other method on `<path><suffix>`: 405 `Method not allowed`;
- any other request (`POST <path>?sessionId=<id>`): sent through the gateway to the route, where the
  wasm server answers; that answer goes back to the POST as it is (status included: wasm-go answers
  200 with the JSON-RPC reply, 202 for notifications) and, when it has a body, is also written as
  `event: message` on the session's stream. An unknown session's event is dropped, as Higress's
  publish to a Redis channel nobody reads.

A forwarded request carries FORWARDED_HEADER so that Envoy routes it to the route itself, not back here.
"""

from __future__ import annotations

import http.client
import json
import queue
import select
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from .matching import find_rule
from ..config.mcp_session import MESSAGE_UPSTREAMS, McpServer

FORWARDED_HEADER = "x-hlocal-mcp-session"  # on requests this process sends through the gateway
HEALTH_PATH, SESSIONS_PATH = "/__hlocal/health", "/__hlocal/sessions"  # control port only
PING_INTERVAL = 5.0  # Higress's health-check ticker (common/sse.go)
DEFAULT_MAX_BODY = 10 * 1024 * 1024
FORWARD_TIMEOUT = 300.0
READ_TIMEOUT = 30.0  # a client that stops sending mid-request (or stops reading a stream) is dropped
POLL = 0.2  # how often an idle stream checks whether its client went away
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "content-length"}
NO_BODY_STATUSES = {204, 304}


@dataclass(frozen=True)
class Options:
    settings: McpServer
    gateway: tuple[str, int]
    ping_interval: float = PING_INTERVAL
    max_body: int = DEFAULT_MAX_BODY
    forward_timeout: float = FORWARD_TIMEOUT
    read_timeout: float = READ_TIMEOUT


class Sessions:
    """Open SSE streams by session id; what is published to one is written on its stream."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[bytes]] = {}

    def open(self) -> tuple[str, queue.Queue[bytes]]:
        session_id, events = str(uuid.uuid4()), queue.Queue()
        with self._lock:
            self._queues[session_id] = events
        return session_id, events

    def close(self, session_id: str) -> None:
        with self._lock:
            self._queues.pop(session_id, None)

    def publish(self, session_id: str, event: bytes) -> bool:
        with self._lock:
            events = self._queues.get(session_id)
        if events is None:
            return False
        events.put(event)
        return True

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._queues)


def log(message: str) -> None:
    print(f"mcp-session: {message}", file=sys.stderr, flush=True)


def sse_event(name: str, data: bytes) -> bytes:
    """As Higress formats it: `event: NAME\\ndata: DATA\\n\\n`, the data as it is."""
    return b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"


def endpoint_url(raw_path: str, suffix: str, raw_query: str, session_id: str) -> str:
    """The message endpoint announced to a session (sse.go HandleSSE, filter.go's trimmed path), the path
    kept escaped as Go's url.URL.String() writes it."""
    if raw_path.endswith(suffix):
        base = raw_path[: -len(suffix)]
    else:  # the suffix itself arrived percent-encoded: trim the decoded path and escape it again
        base = quote(unquote(raw_path)[: -len(suffix)])
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    params["sessionId"] = [session_id]
    # Go's url.Values.Encode: keys sorted, values escaped as QueryEscape does.
    query = urlencode([(key, value) for key in sorted(params) for value in params[key]])
    return f"{base}?{query}"


def ping_event() -> bytes:
    """The keep-alive Higress sends: a JSON-RPC ping request whose id is the time (RFC 3339)."""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return sse_event("message", json.dumps({"jsonrpc": "2.0", "id": now, "method": "ping"},
                                           separators=(",", ":")).encode())


class SessionHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A head and a body go out as two writes: without TCP_NODELAY the body waits for Envoy's delayed
    # ACK (about 40 ms a message, measured).
    disable_nagle_algorithm = True

    def setup(self) -> None:
        self.timeout = self.server.options.read_timeout  # the socket timeout StreamRequestHandler applies
        super().setup()
    server: "SessionServer"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass  # one line per event of interest instead (log())

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _dispatch(self) -> None:
        options = self.server.options
        split = urlsplit(self.path)
        path = unquote(split.path)
        body = self._read_body()
        if body is None:
            return
        rule = find_rule(options.settings.match_list, self.headers.get("host", ""), path)
        if rule is None or rule.upstream_type not in MESSAGE_UPSTREAMS:
            self._forward(body, publish_to=None)
        elif path.endswith(options.settings.sse_path_suffix):
            if self.command == "GET":
                self._stream(split.path, split.query)
            else:
                self._reply(405, b"Method not allowed")
        else:
            session_id = dict(parse_qsl(split.query, keep_blank_values=True)).get("sessionId", "")
            self._forward(body, publish_to=session_id or None)

    # -- requests ----------------------------------------------------------
    def _read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked), or None after answering 400/413 or dropping a
        client that stopped sending."""
        limit = self.server.options.max_body
        try:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                return self._read_chunked(limit)
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            self._reply(400, b"malformed request body")
            return None
        except OSError:
            self.close_connection = True
            return None
        if length < 0:
            self._reply(400, b"malformed request body")
            return None
        if length > limit:
            self._reply(413, b"request body too large")
            return None
        try:
            body = self.rfile.read(length) if length else b""
        except OSError:  # timed out: the client stopped sending
            self.close_connection = True
            return None
        if len(body) < length:
            self.close_connection = True
            return None
        return body

    def _read_chunked(self, limit: int) -> bytes:
        data = bytearray()
        while True:
            size = int(self.rfile.readline(64).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return bytes(data)
            if len(data) + size > limit:
                raise ValueError("too large")
            data += self.rfile.read(size)
            self.rfile.readline(8)

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- the SSE stream ----------------------------------------------------
    def _stream(self, path: str, raw_query: str) -> None:
        options, sessions = self.server.options, self.server.sessions
        session_id, events = sessions.open()
        log(f"session {session_id} opened ({path})")
        reason = "client went away"
        try:
            self.send_response(200)
            for name, value in (("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache"),
                                ("Access-Control-Allow-Origin", "*"), ("Transfer-Encoding", "chunked")):
                self.send_header(name, value)
            self.end_headers()
            self._chunk(sse_event("endpoint", endpoint_url(path, options.settings.sse_path_suffix, raw_query,
                                                           session_id).encode()))
            next_ping = time.monotonic() + options.ping_interval
            while not self._peer_closed():
                try:
                    self._chunk(events.get(timeout=max(0.0, min(POLL, next_ping - time.monotonic()))))
                except queue.Empty:
                    pass
                if time.monotonic() >= next_ping:
                    self._chunk(ping_event())
                    next_ping += options.ping_interval
        except OSError as exc:
            reason = f"write failed: {exc.strerror or exc}"
        finally:
            sessions.close(session_id)
            self.close_connection = True
            log(f"session {session_id} closed ({reason})")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _peer_closed(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # -- through the gateway -----------------------------------------------
    def _forward(self, body: bytes, publish_to: str | None) -> None:
        """Send the request through the gateway; with `publish_to`, also write the answer as an event."""
        host, port = self.server.options.gateway
        conn = http.client.HTTPConnection(host, port, timeout=self.server.options.forward_timeout)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_BY_HOP and name.lower() not in ("x-forwarded-for", FORWARDED_HEADER):
                    conn.putheader(name, value)
            conn.putheader(FORWARDED_HEADER, "forwarded")
            if body or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body or None)
            response = conn.getresponse()
        except OSError as exc:
            conn.close()
            log(f"cannot reach the gateway at {host}:{port}: {exc}")
            self._reply(502, b"hlocal mcp-session: the gateway did not answer")
            return
        try:
            if publish_to is None:
                self._relay(response)
            else:
                self._answer_and_publish(response, publish_to)
        finally:
            conn.close()

    def _send_head(self, response: http.client.HTTPResponse, length: int | None) -> None:
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "x-envoy-upstream-service-time":
                self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _answer_and_publish(self, response: http.client.HTTPResponse, session_id: str) -> None:
        # mcp-session buffers the whole answer, publishes it, then lets it go on to the POST (filter.go).
        data = response.read()
        if data:
            if self.server.sessions.publish(session_id, sse_event("message", data)):
                log(f"session {session_id}: reply of {len(data)} bytes sent on its stream")
            else:
                log(f"session {session_id} has no open stream: reply dropped (Higress publishes it to "
                    f"Redis channel mcp-server-sse:{session_id}, which nobody reads)")
        self._send_head(response, len(data))
        if self.command != "HEAD":
            self.wfile.write(data)

    def _relay(self, response: http.client.HTTPResponse) -> None:
        """Pass an answer on as it arrives (a stream stays a stream)."""
        if self.command == "HEAD" or response.status in NO_BODY_STATUSES:
            self._send_head(response, int(response.getheader("content-length") or 0))
            return
        self._send_head(response, None)
        while True:
            data = response.read1(65536)
            if not data:
                break
            self._chunk(data)
        self.wfile.write(b"0\r\n\r\n")


class SessionServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, options: Options, sessions: Sessions) -> None:
        self.options, self.sessions = options, sessions
        super().__init__(("127.0.0.1", port), SessionHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up mid-answer costs one line, not a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            log(f"connection from {client_address} dropped: {error}")
        else:
            super().handle_error(request, client_address)


class ControlHandler(BaseHTTPRequestHandler):
    """hlocal's own view (health, open sessions), on a port the gateway does not route to."""

    protocol_version = "HTTP/1.1"
    server: "ControlServer"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        if self.path == HEALTH_PATH:
            body = b"ok"
        elif self.path == SESSIONS_PATH:
            body = json.dumps({"sessions": self.server.sessions.ids()}).encode()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ControlServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, sessions: Sessions) -> None:
        self.sessions = sessions
        super().__init__(("127.0.0.1", port), ControlHandler)
