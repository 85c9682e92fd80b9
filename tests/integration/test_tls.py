"""gateway.tls through `hlocal up`: an https listener with a generated certificate, SNI honoured."""

from __future__ import annotations

import json
import os
import socket
import ssl

import pytest

from support import wait_for

pytestmark = pytest.mark.slow


def _https_get(port: int, cafile: str, host: str, path: str) -> bytes:
    context = ssl.create_default_context(cafile=cafile)  # verifies the chain and the name
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with context.wrap_socket(raw, server_hostname=host) as conn:
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
    return reply


def _up_with_tls(make_project, runtime: str):
    """A stack with gateway.tls and one route for shop.test, started; (project, up's output, state)."""
    project = make_project({"gateway": {"port": 0, "tls": True},
                            "routes": [{"name": "shop", "domains": ["shop.test"], "prefix": "/"}]},
                           name=f"tls{runtime}", runtime=runtime)
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project, up, project.state()


def test_up_serves_https_with_sni_and_says_where(make_project) -> None:
    project, up, state = _up_with_tls(make_project, "native")
    port = state["tls_port"]
    assert f"https    https://127.0.0.1:{port}" in up.stdout, up
    cert = state["layout"]["tls_cert"]
    assert state["tls_cert"] == cert  # native: the listener reads the file the client trusts
    assert port and os.stat(state["layout"]["tls_key"]).st_mode & 0o077 == 0  # the key is the user's only
    reply = _https_get(port, cert, "shop.test", "/over-tls")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"path": "/over-tls"' in reply  # the mock backend's echo
    log = project.state_dir / "logs" / "access.log"

    def last_entry() -> dict | None:
        lines = log.read_text().splitlines() if log.is_file() else []
        return json.loads(lines[-1]) if lines else None

    assert wait_for(last_entry, 15, "the https request in the access log")["requested_server_name"] == "shop.test"
    with pytest.raises(ssl.SSLCertVerificationError):
        _https_get(port, cert, "other.test", "/")
    # A restart keeps the certificate a client may have trusted.
    before = open(cert, "rb").read()
    assert project.hlocal("up", "--recreate").returncode == 0
    assert open(project.state()["layout"]["tls_cert"], "rb").read() == before


@pytest.mark.docker
def test_docker_gateway_serves_https_with_the_stack_certificate(make_project, docker_images) -> None:
    """The docker twin: the certificate in .hlocal/<name>/tls/ reaches the container through the config
    mount, and the published https port verifies against it, SNI included."""
    project, up, state = _up_with_tls(make_project, "docker")
    port, cert = state["tls_port"], state["tls_cert"]
    assert cert == str(project.state_dir / "tls" / "gateway.crt")  # the host's copy, not the container's path
    assert state["layout"]["tls_cert"] == "/etc/hlocal/tls/gateway.crt"
    assert f"https    https://127.0.0.1:{port}  (self-signed: {cert})" in up.stdout, up
    reply = _https_get(port, cert, "shop.test", "/over-tls")
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert b'"path": "/over-tls"' in reply
    with pytest.raises(ssl.SSLCertVerificationError):
        _https_get(port, cert, "other.test", "/")
    before = open(cert, "rb").read()
    assert project.hlocal("up", "--recreate").returncode == 0
    assert open(project.state()["tls_cert"], "rb").read() == before
    assert _https_get(project.state()["tls_port"], cert, "shop.test", "/again").startswith(b"HTTP/1.1 200")
