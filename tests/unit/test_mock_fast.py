"""The mock backend's fast path (mock/fast.py): pipelining, the hand-over to the stream path, waiting
handlers, HTTP/1.0, half-close, back-pressure and failures, all against a real MockServer."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading

import pytest
from support import wait_for

from higress_local.mock import MockServer
from higress_local.mock import fast
from higress_local.mock.server import LOOP_ENV

DEADLINE_SECONDS = 10.0


LOOPS = ["uvloop", "asyncio"] if importlib.util.find_spec("uvloop") else ["asyncio"]


@pytest.fixture(params=LOOPS)
def mock(request, monkeypatch):
    """A mock on each event loop it can run on: uvloop where installed, asyncio's in the plain python image."""
    monkeypatch.setenv(LOOP_ENV, request.param)
    with MockServer(quiet=True) as server:
        assert server.loop_name == request.param
        yield server


def get(path: str, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return f"GET {path} {version}\r\nHost: x\r\n{extra}\r\n".encode()


class Replies:
    """Reads HTTP/1.1 replies framed by Content-Length off one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, b""

    def next(self) -> tuple[bytes, bytes]:
        """(head, body) of the next reply; AssertionError if the server closes first."""
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = next(int(line[15:]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length:"))
        while len(rest) < length:
            self.buffer = head + b"\r\n\r\n" + rest
            self._more()
            head, _, rest = self.buffer.partition(b"\r\n\r\n")
        self.buffer = rest[length:]
        return head, rest[:length]

    def closed(self) -> bool:
        return not self.buffer and self.sock.recv(1) == b""

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"the server closed the connection; unread: {self.buffer[:200]!r}"
        self.buffer += chunk


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_SECONDS)


def test_pipelined_requests_are_answered_in_order_across_a_wait_and_the_hand_over(mock):
    mock.set_stubs([{"match": {"path": "/slow"}, "respond": {"delay_ms": 100, "body": "slow"}}])
    post = b"POST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nxy"
    with connect(mock.port) as sock:
        # One write: the fast path serves /a, waits for /slow, serves /c, then hands the
        # connection (with /post and /e unread) to the stream path.
        sock.sendall(get("/a") + get("/slow") + get("/c") + post + get("/e"))
        replies = Replies(sock)
        bodies = [replies.next()[1] for _ in range(5)]
    assert bodies[1] == b"slow"
    assert [json.loads(body)["path"] for body in bodies[:1] + bodies[2:]] == ["/a", "/c", "/post", "/e"]
    assert json.loads(bodies[3])["body"] == "xy"
    assert [entry["path"] for entry in mock.journal()] == ["/a", "/slow", "/c", "/post", "/e"]


def test_a_bad_head_after_a_good_request_gets_400_after_its_reply(mock):
    with connect(mock.port) as sock:
        sock.sendall(get("/ok") + b"GET /bad HTTP/1.1\r\nno colon here\r\n\r\n")
        replies = Replies(sock)
        first, second = replies.next(), replies.next()
        assert first[0].startswith(b"HTTP/1.1 200") and second[0].startswith(b"HTTP/1.1 400")
        assert b"bad header line" in second[1] and replies.closed()


def test_http_1_0_closes_unless_it_asks_for_keep_alive(mock):
    with connect(mock.port) as sock:
        sock.sendall(get("/once", version="HTTP/1.0"))
        replies = Replies(sock)
        assert b"Connection: close" in replies.next()[0] and replies.closed()
    with connect(mock.port) as sock:
        replies = Replies(sock)
        for path in ("/one", "/two"):
            sock.sendall(get(path, "Connection: keep-alive\r\n", version="HTTP/1.0"))
            head, body = replies.next()
            assert b"Connection: keep-alive" in head and json.loads(body)["path"] == path


def test_a_client_that_stops_sending_still_gets_a_delayed_reply(mock):
    mock.set_stubs([{"respond": {"delay_ms": 100, "body": "late"}}])
    with connect(mock.port) as sock:
        sock.sendall(get("/wait"))
        sock.shutdown(socket.SHUT_WR)
        replies = Replies(sock)
        assert replies.next()[1] == b"late" and replies.closed()


def test_a_client_reading_late_pauses_the_mock_and_gets_every_reply(mock, monkeypatch):
    pauses = []
    real = fast.FastConnection.pause_writing
    monkeypatch.setattr(fast.FastConnection, "pause_writing", lambda self: (pauses.append(1), real(self)))
    count = 8000
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up quickly
        sock.settimeout(DEADLINE_SECONDS)
        sock.connect(("127.0.0.1", mock.port))
        # And the mock's end sends little at a time, or the kernel takes megabytes of replies.
        (connection,) = wait_for(lambda: list(mock._fast), DEADLINE_SECONDS, "the mock to accept the connection")
        connection.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sender = threading.Thread(target=sock.sendall, args=(b"".join(get(f"/{n}") for n in range(count)),))
        sender.start()
        try:
            # Nothing is read yet: the replies pile up until the mock stops reading requests.
            wait_for(lambda: pauses, DEADLINE_SECONDS, "the mock to pause on a client that does not read")
            replies = Replies(sock)
            paths = [json.loads(replies.next()[1])["path"] for _ in range(count)]
        finally:
            sender.join(DEADLINE_SECONDS)
    assert paths == [f"/{n}" for n in range(count)]

