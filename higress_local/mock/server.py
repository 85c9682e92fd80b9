"""MockServer: the backend and control servers of one mock, run in background threads."""

from __future__ import annotations

import threading
from typing import Any, Mapping

from .backend import BackendHandler
from .base import TrackingServer
from .control import ControlHandler
from .journal import DEFAULT_LIMIT, Journal, parse_header_filter
from .state import MockState
from .stubs import load_config, parse_stubs

# How often serve_forever checks for shutdown; bounds how long stop() takes.
_POLL_SECONDS = 0.05
_JOIN_SECONDS = 5.0


class MockServer:
    """A mock backend: echoes or stubs requests on `port`, exposes /__hlocal/ on `control_port`."""

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
    ) -> None:
        self.host = host
        self._requested = (port, control_port)
        self.state = MockState(name, load_config(config), Journal(journal_limit), quiet=quiet)
        self._servers: list[TrackingServer] = []
        self._threads: list[threading.Thread] = []

    @property
    def name(self) -> str:
        """The name reported by health and used in log lines."""
        return self.state.name

    @property
    def port(self) -> int:
        """The backend port actually bound (known after start)."""
        return self._bound(0)

    @property
    def control_port(self) -> int:
        """The control port actually bound (known after start)."""
        return self._bound(1)

    @property
    def url(self) -> str:
        """Base URL of the backend port."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def control_url(self) -> str:
        """Base URL of the control port (what MockClient takes)."""
        return f"http://{_url_host(self.host)}:{self.control_port}"

    def start(self) -> MockServer:
        """Bind both ports and serve them in daemon threads; raises OSError if a port is taken."""
        if self._servers:
            raise RuntimeError(f"mock {self.name!r} is already running")
        try:
            for port, handler in zip(self._requested, (BackendHandler, ControlHandler)):
                self._servers.append(TrackingServer((self.host, port), handler, self.state))
        except BaseException:
            self._close()
            raise
        self.state.port, self.state.control_port = self.port, self.control_port
        self.state.stopping.clear()
        for server, role in zip(self._servers, ("backend", "control")):
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": _POLL_SECONDS},
                name=f"hlocal-mock-{self.name}-{role}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving, close open connections and wait for the server threads; safe to repeat."""
        self.state.stopping.set()
        if self._threads:
            # shutdown() waits up to one poll interval; stopping both servers at once halves that.
            stoppers = [threading.Thread(target=server.shutdown) for server in self._servers]
            for stopper in stoppers:
                stopper.start()
            for stopper in stoppers:
                stopper.join()
        self._close()
        for thread in self._threads:
            thread.join(_JOIN_SECONDS)
        self._threads = []

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

    def _bound(self, which: int) -> int:
        if not self._servers:
            raise RuntimeError(f"mock {self.name!r} is not running; call start() first")
        return self._servers[which].server_address[1]

    def _close(self) -> None:
        for server in self._servers:
            server.server_close()
            # Handler threads parked on idle keep-alive connections would otherwise outlive stop().
            server.close_connections()
        self._servers = []


def _header_pair(header: str | tuple[str, str]) -> tuple[str, str]:
    if isinstance(header, str):
        return parse_header_filter(header)
    name, value = header
    return name.lower(), value


def _url_host(host: str) -> str:
    """A host to connect to: wildcard binds are reached via loopback; IPv6 needs brackets."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
