"""The mock under load and large input: listen backlog, many connections, body limit (413), truncation, journal caps."""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import socket
import subprocess
import threading

import pytest

from higress_local.mock import MockServer
from higress_local.mock.base import ERROR_HEADER
from higress_local.mock.journal import Journal
from higress_local.mock.server import BACKLOG

DEADLINE_SECONDS = 10.0


def post(port: int, body: bytes | None, path: str = "/up", headers: dict[str, str] | None = None, method: str = "POST"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE_SECONDS)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def listen_backlog(port: int) -> int:
    """The backlog of the socket listening on `port`, as the kernel reports it (ss: Send-Q)."""
    done = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10)
    fields = done.stdout.split()
    assert done.returncode == 0 and fields, f"ss found no listener on {port}: {done.stdout!r} {done.stderr!r}"
    return int(fields[2])


# --- backlog and concurrency --------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read a listen backlog")
def test_both_ports_listen_with_a_deep_backlog():
    with MockServer(quiet=True) as mock:
        with open("/proc/sys/net/core/somaxconn") as handle:
            cap = int(handle.read())
        expected = min(BACKLOG, cap)
        assert expected >= 1024, f"net.core.somaxconn is {cap} here"
        assert listen_backlog(mock.port) == expected
        assert listen_backlog(mock.control_port) == expected


def test_hundreds_of_connections_opened_at_once_are_all_served():
    connections = 300
    with MockServer(quiet=True) as mock:
        # Every connection is made before any request is sent: they all wait in the accept queue
        # together, which a backlog of 5 turned into dropped SYNs and second-long retries.
        socks = [socket.create_connection(("127.0.0.1", mock.port), timeout=DEADLINE_SECONDS)
                 for _ in range(connections)]
        try:
            for number, sock in enumerate(socks):
                sock.sendall(f"GET /c/{number} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            replies = []
            for sock in socks:
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                replies.append(data)
        finally:
            for sock in socks:
                sock.close()
        assert all(reply.startswith(b"HTTP/1.1 200") for reply in replies)
        assert sorted(e["path"] for e in mock.journal()) == sorted(f"/c/{n}" for n in range(connections))


def test_keep_alive_connections_in_parallel_threads_see_no_failure():
    threads, per_thread = 20, 25
    failures: list[str] = []
    with MockServer(quiet=True) as mock:

        def work(number: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=DEADLINE_SECONDS)
            try:
                for index in range(per_thread):
                    conn.request("POST", f"/t/{number}", body=b'{"i": %d}' % index)
                    response = conn.getresponse()
                    doc = json.loads(response.read())
                    if response.status != 200 or doc["json"] != {"i": index}:
                        failures.append(f"{number}/{index}: {response.status}")
            except (OSError, http.client.HTTPException) as exc:
                failures.append(f"{number}: {exc!r}")
            finally:
                conn.close()

        workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(DEADLINE_SECONDS)
        assert not any(worker.is_alive() for worker in workers)
        assert failures == []
        assert len(mock.journal()) == threads * per_thread


# --- body limit ---------------------------------------------------------------------------------


def test_a_body_over_the_limit_gets_413_naming_the_limit_after_the_upload():
    with MockServer(quiet=True, max_body=1000) as mock:
        status, headers, body = post(mock.port, b"x" * 5000)
        doc = json.loads(body)
        assert status == 413
        assert headers[ERROR_HEADER] == "body-too-large" and headers["Connection"] == "close"
        assert doc["kind"] == "body_too_large" and doc["limit_bytes"] == 1000 and doc["body_bytes"] == 5000
        assert "body limit of 1000 bytes" in doc["error"] and "--max-body" in doc["error"]
        assert mock.journal() == []  # refused requests are not journaled
        assert post(mock.port, b"x" * 1000)[0] == 200  # exactly the limit is fine


def test_a_chunked_body_over_the_limit_gets_413():
    with MockServer(quiet=True, max_body=1000) as mock:
        conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=DEADLINE_SECONDS)
        conn.request("POST", "/c", body=iter([b"a" * 600, b"b" * 600]), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        response = conn.getresponse()
        doc = json.loads(response.read())
        assert response.status == 413 and doc["limit_bytes"] == 1000 and doc["body_bytes"] is None
        assert response.headers[ERROR_HEADER] == "body-too-large"


def test_expect_continue_over_the_limit_is_refused_before_the_body_is_sent():
    with MockServer(quiet=True, max_body=1000) as mock:
        with socket.create_connection(("127.0.0.1", mock.port), timeout=DEADLINE_SECONDS) as sock:
            sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\nExpect: 100-continue\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):  # the mock closes after its 413: no body was needed
                data += chunk
        assert data.startswith(b"HTTP/1.1 413") and b"body limit of 1000 bytes" in data


def test_expect_continue_within_the_limit_gets_100_then_the_reply():
    with MockServer(quiet=True) as mock:
        with socket.create_connection(("127.0.0.1", mock.port), timeout=DEADLINE_SECONDS) as sock:
            sock.sendall(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
                         b"Connection: close\r\n\r\n")
            interim = b""
            while not interim.endswith(b"\r\n\r\n"):
                chunk = sock.recv(1)
                assert chunk, "closed before the 100 Continue"
                interim += chunk
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            sock.sendall(b"ok")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 200") and json.loads(data.partition(b"\r\n\r\n")[2])["body"] == "ok"


# --- truncation ---------------------------------------------------------------------------------


def test_a_body_past_the_keep_size_is_cut_with_a_marker_in_echo_and_journal():
    full = bytes(range(256)) * 40  # binary, 10240 bytes
    with MockServer(quiet=True, keep_body=1000) as mock:
        status, _, body = post(mock.port, full)
        echo = json.loads(body)
        (entry,) = mock.journal()
    assert status == 200
    for doc in (echo, entry):
        assert doc["body_truncated"] is True and doc["body_size"] == len(full)
        assert doc["body_sha256"] == hashlib.sha256(full).hexdigest()
        assert doc["body"] is None and len(doc["body_base64"]) == 1336  # base64 of the first 1000 bytes
        assert doc["json"] is None


def test_a_cut_text_body_stays_text_without_a_split_character():
    text = ("é" * 600).encode()  # two bytes each: a cut at 1001 splits one
    with MockServer(quiet=True, keep_body=1001) as mock:
        doc = json.loads(post(mock.port, text)[2])
    assert doc["body"] == "é" * 500 and doc["body_truncated"] is True and "body_base64" not in doc


def test_a_body_within_the_keep_size_is_whole_and_not_marked():
    with MockServer(quiet=True, keep_body=1000) as mock:
        doc = json.loads(post(mock.port, b'{"a": 1}')[2])
        (entry,) = mock.journal()
    for each in (doc, entry):
        assert each["body"] == '{"a": 1}' and each["json"] == {"a": 1} and each["body_size"] == 8
        assert "body_truncated" not in each and "body_sha256" not in each


# --- journal caps -------------------------------------------------------------------------------


def test_the_journal_drops_its_oldest_entries_past_its_byte_budget():
    with MockServer(quiet=True, journal_max_bytes=50_000) as mock:
        for number in range(40):
            assert post(mock.port, b"y" * 5000, path=f"/b/{number}")[0] == 200
        kept = mock.journal()
        assert 3 <= len(kept) < 10
        assert [e["path"] for e in kept] == [f"/b/{n}" for n in range(40 - len(kept), 40)]
        assert mock.state.journal.size_bytes <= 50_000
        assert kept[-1]["seq"] == 40


def test_the_newest_entry_stays_even_alone_over_the_budget():
    journal = Journal(limit=10, max_bytes=10)
    for number in range(3):
        journal.record({"method": "GET", "path": f"/{number}", "query": {}, "headers": {}, "body": "",
                        "json": None, "http_version": "HTTP/1.1"}, None, 200, 0.0)
    assert [e["path"] for e in journal.entries()] == ["/2"]


def test_the_journal_count_limit_still_applies():
    with MockServer(quiet=True, journal_limit=3) as mock:
        for number in range(5):
            post(mock.port, b"", path=f"/n/{number}")
        assert [e["path"] for e in mock.journal()] == ["/n/2", "/n/3", "/n/4"]


def test_journal_entries_are_copies():
    with MockServer(quiet=True) as mock:
        post(mock.port, b'{"k": [1]}', headers={"X-A": "1"})
        first = mock.journal()[0]
        first["headers"]["x-a"].append("changed")
        first["json"]["k"].append(2)
        again = mock.journal()[0]
    assert again["headers"]["x-a"] == ["1"] and again["json"] == {"k": [1]}


@pytest.mark.parametrize("body", [b"a body", None], ids=["stream path", "fast path"])
def test_a_failing_handler_costs_one_connection_not_the_mock(monkeypatch, capfd, body):
    import higress_local.mock.backend as backend

    real = backend.describe
    calls = []

    def fail_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(backend, "describe", fail_once)
    with MockServer(quiet=True) as mock:
        with pytest.raises((http.client.HTTPException, OSError)):
            # A GET without a body is served by the fast path (mock/fast.py), a POST by the stream path.
            post(mock.port, body, method="GET" if body is None else "POST")
        assert post(mock.port, body, method="GET" if body is None else "POST")[0] == 200
    err = capfd.readouterr().err
    assert "internal error" in err and "boom" in err
