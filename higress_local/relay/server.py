"""The relay: HTTP on loopback in front of one redis-server, as Higress's Redis client would talk to it.

Two requests, both POST (the adapted module sends them; see higress_local/wasm/adapt/shim.wat):
- ``/hlocal-redis/init``: the arguments of the plugin's proxy_redis_init (u32 little-endian sizes of
  username and password, u32 timeout in ms, then username, password and the cluster name with
  wasm-go's options after '?'). From then on connections AUTH with them, SELECT the db option and
  use the timeout, as Higress's client does after Init (higress-group/envoy
  source/common/redis/async_client_impl.cc: the last initialize() wins for the cluster).
- ``/hlocal-redis/call``: one RESP command as body; answers 200 with the RESP reply (a Redis error
  is a RESP error, still 200). A relay-side failure (Redis unreachable, timed out, bad request)
  answers a non-200 status with an empty body and the reason in `x-hlocal-redis-error`: the module
  reports that to the plugin as a failed call, the way Higress reports a broken connection.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from .resp import RespError, command, one_command, read_value
from .wiring import HEALTH_PATH

log = logging.getLogger("hlocal.relay")

INIT_PATH, CALL_PATH = "/hlocal-redis/init", "/hlocal-redis/call"
READY_PATH = "/__hlocal/health"  # where hlocal's readiness check looks (as for its mocks)
ERROR_HEADER = "x-hlocal-redis-error"
DEFAULT_MAX_BODY = 16 * 1024 * 1024
DEFAULT_TIMEOUT_MS = 1000  # Higress's default operation timeout
BODY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class RedisAuth:
    """How connections authenticate and which db they use (what the last Init said)."""

    username: str = ""
    password: str = ""
    db: int = 0
    timeout_ms: int = DEFAULT_TIMEOUT_MS


def parse_init(body: bytes, default_password: str = "") -> RedisAuth:
    """Decode the init body; ValueError if it is malformed."""
    if len(body) < 12:
        raise ValueError("init body shorter than its 12-byte header")
    user_len, password_len, timeout = struct.unpack_from("<III", body)
    if 12 + user_len + password_len > len(body):
        raise ValueError("init body shorter than its declared sizes")
    at = 12
    username = body[at:at + user_len].decode()
    at += user_len
    password = body[at:at + password_len].decode()
    at += password_len
    cluster = body[at:].decode()
    options = parse_qs(cluster.partition("?")[2])
    db = int((options.get("db") or ["0"])[0])
    return RedisAuth(username=username, password=password or default_password, db=db,
                     timeout_ms=timeout or DEFAULT_TIMEOUT_MS)


class RedisUnavailable(Exception):
    """Redis could not be reached, or did not answer in time."""


class _Connection:
    def __init__(self, address: tuple[str, int], auth: RedisAuth, generation: int) -> None:
        self.generation, self.auth = generation, auth
        timeout = auth.timeout_ms / 1000
        try:
            self.sock = socket.create_connection(address, timeout=timeout)
        except OSError as exc:
            raise RedisUnavailable(f"cannot connect to redis at {address[0]}:{address[1]}: {exc}") from exc
        self.sock.settimeout(timeout)
        self.stream = self.sock.makefile("rb")
        self.setup_error: bytes | None = None
        try:
            self._setup(auth)
        except RedisUnavailable:
            self.close()
            raise

    def _setup(self, auth: RedisAuth) -> None:
        if auth.password:
            args = ("AUTH", auth.username, auth.password) if auth.username else ("AUTH", auth.password)
            reply = self.roundtrip(command(*args))
            if reply.startswith(b"-"):
                self.setup_error = reply
        if auth.db and self.setup_error is None:
            reply = self.roundtrip(command("SELECT", str(auth.db)))
            if reply.startswith(b"-"):
                self.setup_error = reply

    def roundtrip(self, request: bytes) -> bytes:
        try:
            self.sock.sendall(request)
            return read_value(self.stream)
        except socket.timeout as exc:
            raise RedisUnavailable(f"redis did not answer within {self.auth.timeout_ms} ms") from exc
        except (OSError, EOFError) as exc:
            raise RedisUnavailable(f"connection to redis failed: {exc}") from exc
        except RespError as exc:  # Higress's client drops such a connection too: a failed call
            raise RedisUnavailable(f"redis answered malformed RESP: {exc}") from exc

    def drained(self) -> bool:
        """Nothing unread after the reply: otherwise the next command on it would get a stale answer."""
        try:
            self.sock.setblocking(False)
            try:
                return not self.stream.peek(1)
            finally:
                self.sock.settimeout(self.auth.timeout_ms / 1000)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        for thing in (self.stream, self.sock):
            try:
                thing.close()
            except OSError:
                pass


class Relay:
    """Redis connections shared by the HTTP handler threads (one command per connection at a time)."""

    def __init__(self, address: tuple[str, int], default_password: str = "") -> None:
        self.address, self.default_password = address, default_password
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._auth = RedisAuth(password=default_password)
        self._generation = 0

    def init(self, auth: RedisAuth) -> None:
        with self._lock:
            if auth != self._auth:
                self._auth, self._generation = auth, self._generation + 1
                stale, self._idle = self._idle, []
            else:
                stale = []
        for conn in stale:
            conn.close()

    def call(self, request: bytes) -> bytes:
        """The RESP reply to one command; RedisUnavailable when Redis cannot answer."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
            auth, generation = self._auth, self._generation
        if conn is None:
            conn = _Connection(self.address, auth, generation)
        if conn.setup_error is not None:  # AUTH or SELECT refused: that is the command's answer
            conn.close()
            return conn.setup_error
        try:
            reply = conn.roundtrip(request)
        except RedisUnavailable:
            conn.close()
            raise
        if not conn.drained():
            log.warning("relay: redis sent bytes after its reply; dropping that connection")
            conn.close()
            return reply
        with self._lock:
            if conn.generation == self._generation:
                self._idle.append(conn)
                conn = None
        if conn is not None:
            conn.close()
        return reply

    def redis_answers(self) -> bool:
        """Whether Redis answers a PING now (NOAUTH counts: it is up, it wants Init's credentials)."""
        try:
            with socket.create_connection(self.address, timeout=1) as sock:
                sock.settimeout(1)
                sock.sendall(command("PING"))
                return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Handler(BaseHTTPRequestHandler):
    server: "RelayServer"
    protocol_version = "HTTP/1.1"  # keep-alive: Envoy reuses its connections to the relay

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _reply(self, status: int, body: bytes = b"", error: str = "") -> None:
        if error:
            log.warning("relay: %s", error)
        try:
            self.send_response(status)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(len(body)))
            if error:
                self.send_header(ERROR_HEADER, error.replace("\r", " ").replace("\n", " ")[:500])
            self.end_headers()
            self.wfile.write(body)
        except OSError as exc:  # the caller hung up: nobody is left to answer
            log.debug("relay: cannot answer %s: %s", self.address_string(), exc)
            self.close_connection = True

    def _body(self) -> bytes | None:
        length = self.headers.get("content-length")
        # Unless the body is read whole, the connection cannot carry another request.
        keep, self.close_connection = self.close_connection, True
        if length is None:
            self._reply(411, error="request without content-length")
            return None
        if not (length.strip().isascii() and length.strip().isdigit()):
            self._reply(400, error=f"bad content-length {length[:40]!r}")
            return None
        size = int(length)
        if size > self.server.max_body:
            self._reply(413, error=f"request of {size} bytes exceeds the relay's limit of {self.server.max_body}")
            return None
        self.connection.settimeout(BODY_TIMEOUT_S)  # Envoy sends a body at once; a stalled one is refused
        try:
            body = self.rfile.read(size)
        except TimeoutError:
            self._reply(408, error=f"request body not received within {BODY_TIMEOUT_S:.0f} s")
            return None
        self.connection.settimeout(None)
        if len(body) < size:
            self._reply(400, error=f"request body ended after {len(body)} of {size} bytes")
            return None
        self.close_connection = keep
        return body

    def do_GET(self) -> None:
        if self.path == HEALTH_PATH:
            self._reply(200, b"ok")
        elif self.path == READY_PATH:  # ready = the relay serves and its Redis answers
            if self.server.relay.redis_answers():
                self._reply(200, b"ok")
            else:
                self._reply(503, error=f"redis at {self.server.relay.address[0]}:{self.server.relay.address[1]} "
                                       f"does not answer")
        else:
            self._reply(404, error=f"no such relay path {self.path}")

    def do_POST(self) -> None:
        body = self._body()
        if body is None:
            return
        relay = self.server.relay
        if self.path == INIT_PATH:
            try:
                relay.init(parse_init(body, relay.default_password))
            except (ValueError, UnicodeDecodeError) as exc:
                self._reply(400, error=f"bad init request: {exc}")
                return
            self._reply(200, b"+OK\r\n")
        elif self.path == CALL_PATH:
            try:
                request = one_command(body)
            except RespError as exc:
                self._reply(400, error=f"bad RESP command: {exc}")
                return
            try:
                self._reply(200, relay.call(request))
            except RedisUnavailable as exc:
                self._reply(502, error=str(exc))
        else:
            self._reply(404, error=f"no such relay path {self.path}")


class RelayServer(ThreadingHTTPServer):
    """Serves the relay on 127.0.0.1 only: it speaks for a Redis that may hold credentials."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # Envoy opens connections in bursts; socketserver's default is 5

    def __init__(self, port: int, redis: tuple[str, int], *, password: str = "",
                 max_body: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.relay = Relay(redis, password)
        self.max_body = max_body

    def server_close(self) -> None:
        super().server_close()
        self.relay.close()
