"""What makes the mock cheap per request: its event loop (uvloop or asyncio's), the request log written
in batches, reply heads built once a second and header names checked once; each as it behaves."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket

import pytest
from support import wait_for

from higress_local.mock import MockServer, base, server, state
from higress_local.mock.base import HttpError, Reply, parse_head

DEADLINE_SECONDS = 10.0
HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


def echo_path(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_SECONDS) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return json.loads(data.partition(b"\r\n\r\n")[2])["path"]


@pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop is not installed")
def test_the_mock_runs_on_uvloop_when_installed_and_on_asyncio_when_told(monkeypatch):
    monkeypatch.delenv(server.LOOP_ENV, raising=False)
    with MockServer(quiet=True) as mock:
        assert mock.loop_name == "uvloop" and echo_path(mock.port, "/uv") == "/uv"
    monkeypatch.setenv(server.LOOP_ENV, "asyncio")
    with MockServer(quiet=True) as mock:
        assert mock.loop_name == "asyncio" and echo_path(mock.port, "/aio") == "/aio"


def test_without_uvloop_the_mock_runs_on_asyncio(monkeypatch):
    monkeypatch.delenv(server.LOOP_ENV, raising=False)
    monkeypatch.setattr(server, "uvloop", None)  # as in the docker runtime's plain python image
    with MockServer(quiet=True) as mock:
        assert mock.loop_name == "asyncio" and echo_path(mock.port, "/plain") == "/plain"


def test_request_lines_reach_stderr_while_the_mock_runs_in_one_write(capfd, monkeypatch):
    writes = []
    with MockServer(name="api") as mock:
        real_flush = mock.state.flush_log

        def flush() -> None:
            writes.append(len(mock.state._pending))
            real_flush()

        monkeypatch.setattr(mock.state, "flush_log", flush)
        paths = [f"/logged/{n}" for n in range(5)]
        for path in paths:
            assert echo_path(mock.port, path) == path
        seen = ""

        def all_logged() -> bool:
            nonlocal seen
            seen += capfd.readouterr().err
            return all(f"api GET {path} 200" in seen for path in paths)

        wait_for(all_logged, DEADLINE_SECONDS, "the request lines on stderr before the mock stops")
    # Five requests within LOG_FLUSH_SECONDS of each other: fewer writes than lines.
    assert sum(writes) >= 5 and len([w for w in writes if w]) < 5


def test_a_full_batch_of_log_lines_is_written_at_once(capfd, monkeypatch):
    monkeypatch.setattr(state, "LOG_FLUSH_SECONDS", 3600.0)  # only the count can trigger the write

    async def log_many(mock_state: state.MockState) -> None:
        for n in range(state.LOG_FLUSH_LINES):
            mock_state.log(f"line {n}")

    mock_state = state.MockState("x", None, None)  # type: ignore[arg-type]  # log needs neither
    asyncio.run(log_many(mock_state))
    err = capfd.readouterr().err
    assert f"line {state.LOG_FLUSH_LINES - 1}\n" in err and not mock_state._pending


class _Writer:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        pass


def _sent(reply: Reply, **kwargs) -> bytes:
    coroutine = reply.send_head(**kwargs)
    with pytest.raises(StopIteration):
        coroutine.send(None)
    return reply.writer.data  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [200, 404, 204, 599])
@pytest.mark.parametrize("content_type", [None, "application/json", "text/plain; charset=\u00e9", "x/\u4e2d"])
@pytest.mark.parametrize("head", ["GET / HTTP/1.1", "GET / HTTP/1.0", "GET / HTTP/1.1\r\nConnection: close"])
def test_a_cached_reply_head_is_the_head_built_in_full(status, content_type, head):
    request = parse_head(f"{head}\r\nHost: x\r\n\r\n".encode())
    for _ in range(2):  # built, then from the cache
        cached = _sent(Reply(_Writer(), request), status=status, content_type=content_type, length=7)  # type: ignore[arg-type]
        reply = Reply(_Writer(), request)  # type: ignore[arg-type]
        full = reply._head(status, [], content_type, 7, ())
        assert cached == full
        assert cached.startswith(f"HTTP/1.1 {status} ".encode()) and b"\r\nContent-Length: 7\r\n" in cached


def test_header_names_checked_once_still_refuse_a_bad_line(monkeypatch):
    monkeypatch.setattr(base, "_NAMES", {})
    request = parse_head(b"GET / HTTP/1.1\r\nX-Seen: 1\r\nx-seen: 2\r\n\r\n")
    assert request is not None and request.fields == {"x-seen": ["1", "2"]}
    assert base._NAMES == {"X-Seen": "x-seen", "x-seen": "x-seen"}
    for bad in (b"X-Seen\r\n", b" X-Seen: folded\r\n", b"Bad Name: 1\r\n"):
        with pytest.raises(HttpError) as caught:
            parse_head(b"GET / HTTP/1.1\r\n" + bad + b"\r\n")
        assert caught.value.status == 400


def test_the_checked_names_are_bounded(monkeypatch):
    monkeypatch.setattr(base, "_NAMES", {})
    for n in range(base._NAMES_KEPT + 50):
        request = parse_head(f"GET / HTTP/1.1\r\nX-{n}: v\r\n\r\n".encode())
        assert request is not None and request.fields == {f"x-{n}": ["v"]}
    assert len(base._NAMES) == base._NAMES_KEPT
