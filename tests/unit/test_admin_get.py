"""readiness.admin_get: a small loopback HTTP client (Envoy's admin API), read against a real server."""

from __future__ import annotations

import http.server
import threading

import pytest

from higress_local.system.readiness import _parse_response, admin_get


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        body = f"path={self.path} host={self.headers['Host']}".encode()
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (body[:5], body[5:]):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_response(404 if self.path.startswith("/missing") else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_status_body_params_and_host(server):
    response = admin_get(f"{server}/stats", params={"filter": "^a b$"})
    assert response.status_code == 200
    assert response.text.startswith("path=/stats?filter=%5Ea+b%24 host=127.0.0.1:")


def test_an_error_status_is_returned_not_raised(server):
    assert admin_get(f"{server}/missing").status_code == 404


def test_chunked_bodies_are_joined(server):
    assert admin_get(f"{server}/chunked").text.startswith("path=/chunked")


def test_nothing_listening_is_a_connection_error():
    from higress_local.system.ports import free_port

    with pytest.raises(ConnectionError):
        admin_get(f"http://127.0.0.1:{free_port()}/ready", timeout=1)


def test_a_torn_response_is_a_connection_error():
    with pytest.raises(ConnectionError):
        _parse_response(b"HTTP/1.1 200 OK\r\nContent-Le", "u")
    with pytest.raises(ConnectionError):
        _parse_response(b"garbage", "u")
