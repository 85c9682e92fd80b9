"""The mock behind a real gateway under concurrent load, and a real mock process's memory under large bodies."""

from __future__ import annotations

import hashlib
import json
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from higress_local.system.ports import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = 50
LOAD_SECONDS = 2.0
REQUEST_TIMEOUT = 10.0
BIG_POSTS, BIG_POST_BYTES = 5, 40 * 1000 * 1000
RSS_BOUND_MB = 20.0
MOCK_LIMIT = 64 * 1024 * 1024  # the documented default of --max-body


def keep_alive_load(port: int, connections: int, seconds: float) -> tuple[list[float], list[str], list[dict]]:
    """`connections` keep-alive connections, opened at once, each sending GETs for `seconds`.

    Returns the latencies of good replies, the failures, and one echo document per connection.
    """
    start = threading.Barrier(connections)
    latencies: list[float] = []
    failures: list[str] = []
    samples: list[dict] = []
    lock = threading.Lock()

    def worker(number: int) -> None:
        request = f"GET /load/{number} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        start.wait(REQUEST_TIMEOUT)
        end = time.monotonic() + seconds
        sample = None
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT) as sock:
                reader = sock.makefile("rb")
                while time.monotonic() < end:
                    began = time.monotonic()
                    sock.sendall(request)
                    status_line = reader.readline()
                    length = 0
                    while (line := reader.readline()) not in (b"\r\n", b""):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":", 1)[1])
                    body = reader.read(length)
                    took = time.monotonic() - began
                    with lock:
                        if status_line.startswith(b"HTTP/1.1 200") and len(body) == length:
                            latencies.append(took)
                            sample = body
                        else:
                            failures.append(f"{number}: {status_line!r}")
                            return
        except OSError as exc:
            with lock:
                failures.append(f"{number}: {exc!r}")
        if sample is not None:
            with lock:
                samples.append(json.loads(sample))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 3 * REQUEST_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), "a load thread outlived its deadline"
    return latencies, failures, samples


@pytest.fixture(scope="module")
def gateway_port(module_projects, transformer_wasm) -> int:
    """A native stack: the transformer adding `x-load: 1` in front of the mock; its listener port."""
    port = free_port()
    project = module_projects({
        "runtime": "native",
        "gateway": {"port": port},
        "plugins": [{"name": "transformer", "wasm": "plugin.wasm",
                     "config": {"reqRules": [{"operate": "add", "headers": [{"key": "x-load", "value": "1"}]}]}}],
    }, files={"plugin.wasm": transformer_wasm}, name="mockload")
    result = project.hlocal("up")
    assert result.returncode == 0, result
    return port


def test_concurrent_keep_alive_load_through_the_gateway_has_no_failure(gateway_port):
    latencies, failures, samples = keep_alive_load(gateway_port, CONNECTIONS, LOAD_SECONDS)

    assert failures == []
    assert len(samples) == CONNECTIONS  # every connection was served, none starved
    assert len(latencies) >= CONNECTIONS * 5
    # A dropped SYN (a full accept queue) costs a second or more; a 504 shows up as a failure above.
    assert max(latencies) < 5.0, f"worst latency {max(latencies):.2f} s"
    for doc in samples:  # went through the plugin to the mock
        assert doc["headers"]["x-load"] == ["1"] and doc["path"].startswith("/load/")


def test_a_body_over_the_mock_limit_reaches_the_client_as_a_413_naming_it(gateway_port):
    block = b"z" * 1_000_000
    size = len(block) * (MOCK_LIMIT // len(block) + 1)  # whole blocks, just over the limit
    with socket.create_connection(("127.0.0.1", gateway_port), timeout=60) as sock:
        sock.sendall(f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n".encode())
        for _ in range(size // len(block)):  # the whole body goes out: the mock reads it before refusing
            sock.sendall(block)
        reader = sock.makefile("rb")
        status_line = reader.readline()
        headers = {}
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        doc = json.loads(reader.read(int(headers["content-length"])))
    assert status_line.startswith(b"HTTP/1.1 413")
    assert headers["x-hlocal-mock-error"] == "body-too-large"
    assert doc["limit_bytes"] == MOCK_LIMIT and doc["body_bytes"] == size
    assert "body limit of 67108864 bytes (64 MiB)" in doc["error"]


def read_listening_line(process: subprocess.Popen) -> dict:
    deadline = time.monotonic() + REQUEST_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                line = process.stdout.readline()
                assert line, f"mock exited early: {process.wait()}"
                return json.loads(line)
    raise AssertionError(f"no listening line within {REQUEST_TIMEOUT}s")


def big_post(port: int, number: int, block: bytes, size: int = BIG_POST_BYTES) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(f"POST /big/{number} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     f"Content-Length: {size}\r\nConnection: close\r\n\r\n".encode())
        for _ in range(size // len(block)):
            sock.sendall(block)
        data = b""
        while chunk := sock.recv(1 << 20):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return json.loads(body)


def test_a_real_mock_process_stays_flat_under_large_bodies():
    argv = [sys.executable, "-m", "higress_local.mock", "--port", "0"]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = read_listening_line(process)["port"]
        mock = psutil.Process(process.pid)
        big_post(port, -1, b"warm" * 1000, 4000)  # first request: imports and buffers settle
        before = mock.memory_info().rss / 1e6
        block = hashlib.sha256(b"hlocal").digest() * 2000  # 64,000 bytes; divides BIG_POST_BYTES
        expected = hashlib.sha256(block * (BIG_POST_BYTES // len(block))).hexdigest()
        for number in range(BIG_POSTS):
            doc = big_post(port, number, block)
            assert doc["body_truncated"] is True and doc["body_size"] == BIG_POST_BYTES
            assert doc["body_sha256"] == expected
        after = mock.memory_info().rss / 1e6
        assert after - before <= RSS_BOUND_MB, f"RSS {before:.1f} -> {after:.1f} MB after {BIG_POSTS} large POSTs"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=REQUEST_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()
