"""MockServer: the backend and control servers of one mock, served by an event loop in a background thread."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import threading
from typing import Any, Callable, Mapping

try:
    import uvloop
except ImportError:  # optional: the docker runtime's plain python image has no uvloop
    uvloop = None

from .backend import serve_backend
from .base import HEAD_LIMIT, Handler, serve_connection
from .client import MockClient
from .control import CONTROL_MAX_BODY, serve_control
from .fast import FastConnection
from .journal import DEFAULT_LIMIT, DEFAULT_MAX_BYTES, Journal, parse_header_filter
from .state import MockState
from .stubs import load_config, parse_stubs
from .wire import KEEP_BODY, MAX_BODY

# Listen backlog of both ports: as deep as Envoy's own (the kernel caps it at net.core.somaxconn).
# With the 5 of http.server, 200 connections opened at once overflowed the accept queue and
# dropped SYNs were retried only after a second or more.
BACKLOG = 4096
_START_SECONDS = 10.0
_STOP_SECONDS = 5.0
# "asyncio" forces the standard library's event loop even where uvloop is installed (to compare).
LOOP_ENV = "HLOCAL_MOCK_LOOP"


class _Generate:
    """The default of MockServer(token=...): make up a token."""


GENERATE = _Generate()


class MockServer:
    """A mock backend: echoes or stubs requests on `port`, exposes /__hlocal/ on `control_port`.

    The control API needs `token` (generated unless given; None turns the check off) on every
    endpoint but health; `client()` returns a MockClient that sends it.
    """

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int = 0,
        name: str = "backend",
        *,
        quiet: bool = False,
        journal_limit: int = DEFAULT_LIMIT,
        journal_max_bytes: int = DEFAULT_MAX_BYTES,
        max_body: int = MAX_BODY,
        keep_body: int = KEEP_BODY,
        token: str | None | _Generate = GENERATE,
    ) -> None:
        if isinstance(token, _Generate):
            token = secrets.token_urlsafe(32)
        if token is not None and not token.strip():
            raise ValueError("the control token must not be empty")
        if max_body < 0 or keep_body < 0:
            raise ValueError("body limits must be >= 0 bytes")
        self.host = host
        self._requested = (port, control_port)
        self.state = MockState(
            name, load_config(config), Journal(journal_limit, journal_max_bytes), quiet=quiet,
            token=token.strip() if token else None, max_body=max_body, keep_body=min(keep_body, max_body),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._fast: set[FastConnection] = set()

    @property
    def name(self) -> str:
        """The name reported by health and used in log lines."""
        return self.state.name

    @property
    def token(self) -> str | None:
        """The token the control API requires (None: none required)."""
        return self.state.token

    @property
    def port(self) -> int:
        """The backend port actually bound (known after start)."""
        return self._bound(0)

    @property
    def control_port(self) -> int:
        """The control port actually bound (known after start)."""
        return self._bound(1)

    @property
    def loop_name(self) -> str:
        """The event loop serving the mock: "uvloop" or "asyncio" (known after start)."""
        if self._loop is None:
            raise RuntimeError(f"mock {self.name!r} is not running; call start() first")
        return "uvloop" if type(self._loop).__module__.startswith("uvloop") else "asyncio"

    @property
    def url(self) -> str:
        """Base URL of the backend port."""
        return _base_url(self.host, self.port)

    @property
    def control_url(self) -> str:
        """Base URL of the control port (what MockClient takes)."""
        return _base_url(self.host, self.control_port)

    def client(self, timeout: float = 5.0) -> MockClient:
        """A MockClient for this mock's control port, carrying its token."""
        return MockClient(self.control_url, timeout=timeout, token=self.token)

    def start(self) -> MockServer:
        """Bind both ports and serve them from a daemon thread; raises OSError if a port is taken."""
        if self._loop is not None:
            raise RuntimeError(f"mock {self.name!r} is already running")
        try:
            # Bound here, in the caller's thread, so a taken port raises OSError right away.
            self._sockets = [_listen(self.host, port) for port in self._requested]
        except BaseException:
            self._close_sockets()
            raise
        self._loop = new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"hlocal-mock-{self.name}", daemon=True
        )
        self._thread.start()
        self.state.port, self.state.control_port = self.port, self.control_port
        try:
            asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(_START_SECONDS)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving, close open connections (ending delays and streams) and the loop; safe to repeat."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            self._close_sockets()
            return
        try:
            asyncio.run_coroutine_threadsafe(self._close(), loop).result(_STOP_SECONDS)
        except Exception:  # noqa: BLE001 - stopping must go on; the sockets are closed below anyway
            pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_SECONDS)
        if not thread.is_alive():
            loop.close()
        self._close_sockets()
        self._loop = self._thread = None
        self._servers = []
        self.state.flush_log()

    def journal(
        self,
        since: int | None = None,
        header: str | tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Journal entries after `since`, optionally only those with a header value ("name:value")."""
        headers = [] if header is None else [_header_pair(header)]
        return self.state.journal.entries(since, headers, limit)

    def clear_journal(self) -> None:
        """Forget every journaled request."""
        self.state.journal.clear()

    def set_stubs(self, stubs: list[Any]) -> None:
        """Validate and replace the stub list atomically; raises StubConfigError."""
        self.state.stubs = parse_stubs(stubs)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    async def _serve(self) -> None:
        ports: list[tuple[Handler, int, int]] = [
            (serve_backend, self.state.keep_body, self.state.max_body),
            (serve_control, CONTROL_MAX_BODY, CONTROL_MAX_BODY),
        ]
        for sock, (handler, keep, limit) in zip(self._sockets, ports):
            if handler is serve_backend:
                self._servers.append(await self._serve_fast(sock, handler, keep, limit))
                continue
            server = await asyncio.start_server(
                self._connection(handler, keep, limit), sock=sock, backlog=BACKLOG, limit=HEAD_LIMIT
            )
            self._servers.append(server)

    async def _serve_fast(self, sock: socket.socket, handler: Handler, keep: int, limit: int) -> asyncio.Server:
        """Serve a port by the fast path (fast.py), which hands a connection to the stream path when it must."""
        hand_over = self._hand_over(handler, keep, limit)
        return await asyncio.get_running_loop().create_server(
            lambda: FastConnection(self.state, handler, hand_over, self._track, self._fast), sock=sock, backlog=BACKLOG
        )

    def _hand_over(self, handler: Handler, keep: int, limit: int) -> Callable[[asyncio.Transport, bytes], None]:
        """Move a connection from the fast path to the stream path, with the bytes it has not served."""
        connected = self._connection(handler, keep, limit)

        def hand_over(transport: asyncio.Transport, unread: bytes) -> None:
            loop = asyncio.get_running_loop()
            protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader(HEAD_LIMIT, loop), connected, loop)
            transport.set_protocol(protocol)
            protocol.connection_made(transport)  # starts `connected` in a task
            if unread:
                protocol.data_received(unread)

        return hand_over

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _connection(self, handler: Handler, keep: int, limit: int) -> Any:
        async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            try:
                await serve_connection(reader, writer, self.state, handler, keep, limit)
            except asyncio.CancelledError:
                # Only stop() cancels: end quietly. Re-raised, asyncio's stream callback printed a
                # traceback to the log for every connection still open (Envoy keeps a pool of them).
                pass
            finally:
                self._tasks.discard(task)

        return connected

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        for connection in list(self._fast):
            if connection.transport is not None:
                connection.transport.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()  # each closes its connection; a pending delay or stream ends with it
        if tasks:
            await asyncio.wait(tasks, timeout=_STOP_SECONDS)
        loop = asyncio.get_running_loop()
        await loop.shutdown_default_executor()

    def _bound(self, which: int) -> int:
        if not self._sockets:
            raise RuntimeError(f"mock {self.name!r} is not running; call start() first")
        return self._sockets[which].getsockname()[1]

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()
        self._sockets = []


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed, else asyncio's.

    uvloop (libuv) runs the loop and the transports in C: in bench/load.py (200 connections through
    the gateway) the mock's CPU per request was 85 us on uvloop against 96 us on asyncio's loop, the
    rest being the mock's own Python. The docker runtime runs this package in a plain python image
    without it, on asyncio's loop; both serve the same protocol code. HLOCAL_MOCK_LOOP=asyncio
    forces asyncio's loop.
    """
    if uvloop is not None and os.environ.get(LOOP_ENV, "").strip().lower() != "asyncio":
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port), IPv6 when the host is an IPv6 address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As http.server did: a restarted mock can take its port back from connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _header_pair(header: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(header, str):
        return parse_header_filter(header)
    name, value = header
    return name.lower(), value


def _base_url(host: str, port: int) -> str:
    """The URL to reach a port bound on `host`: wildcard binds via loopback; IPv6 in brackets."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
