"""The mock's control API: loopback Host only (DNS rebinding), and the per-stack token."""

from __future__ import annotations

import http.client
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from higress_local.mock import MockClient, MockClientError, MockServer
from higress_local.mock.control import host_allowed

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 10.0


def control(port: int, method: str = "GET", path: str = "/__hlocal/journal", headers: dict[str, str] | None = None,
            body: bytes | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE_SECONDS)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in {"Host": f"127.0.0.1:{port}", **(headers or {})}.items():
            if value is not None:
                conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.headers, json.loads(response.read() or b"null")
    finally:
        conn.close()


@pytest.fixture
def mock():
    with MockServer(quiet=True) as server:
        yield server


# --- Host check ---------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8081", "localhost", "LocalHost:1", "[::1]", "[::1]:65535"])
def test_loopback_hosts_are_allowed(host):
    assert host_allowed(host)


@pytest.mark.parametrize("host", ["", None, "evil.example", "evil.example:8081", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "127.0.0.2", "0.0.0.0", "[::1]x", "127.0.0.1:abc",
                                  "localhost:1234567", "[::2]:80", "::1"])
def test_other_hosts_are_refused(host):
    assert not host_allowed(host)


def test_a_foreign_host_gets_403_even_with_the_token_and_changes_nothing(mock):
    auth = {"Authorization": f"Bearer {mock.token}"}
    status, _, doc = control(mock.control_port, "PUT", "/__hlocal/stubs", {**auth, "Host": "rebind.example:8081"},
                             body=b'{"stubs": [{"respond": {"body": "owned"}}]}')
    assert status == 403 and "Host: rebind.example:8081" in doc["error"]
    assert control(mock.control_port, headers={**auth, "Host": "rebind.example"})[0] == 403
    assert control(mock.control_port, path="/__hlocal/health", headers={"Host": "rebind.example"})[0] == 403
    assert control(mock.control_port, headers={**auth, "Host": None})[0] == 403  # no Host at all
    assert mock.client().stubs() == []


def test_the_backend_port_answers_any_host(mock):
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=DEADLINE_SECONDS)
    conn.request("GET", "/x", headers={"Host": "api.example.com"})
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["headers"]["host"] == ["api.example.com"]


# --- token --------------------------------------------------------------------------------------


def test_a_request_without_the_token_gets_401(mock):
    status, headers, doc = control(mock.control_port)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    assert "no token" in doc["error"] and "Authorization: Bearer" in doc["error"]
    status, _, doc = control(mock.control_port, headers={"Authorization": "Bearer wrong"})
    assert status == 401 and "wrong token" in doc["error"]
    assert control(mock.control_port, "DELETE", headers={"X-Hlocal-Token": "wrong"})[0] == 401


def test_the_token_is_accepted_as_bearer_or_in_its_own_header(mock):
    assert control(mock.control_port, headers={"Authorization": f"Bearer {mock.token}"})[0] == 200
    assert control(mock.control_port, headers={"authorization": f"bearer {mock.token}"})[0] == 200
    assert control(mock.control_port, headers={"X-Hlocal-Token": mock.token})[0] == 200


def test_health_needs_no_token(mock):
    status, _, doc = control(mock.control_port, path="/__hlocal/health")
    assert status == 200 and doc["ok"] is True


def test_each_mock_makes_its_own_token():
    with MockServer(quiet=True) as one, MockServer(quiet=True) as two:
        assert one.token and two.token and one.token != two.token and len(one.token) >= 32
        assert one.client().journal() == []
        with pytest.raises(MockClientError, match="answered 401") as caught:
            MockClient(one.control_url, token=two.token).journal()
        assert caught.value.status == 401


def test_a_mock_without_a_token_needs_none():
    with MockServer(quiet=True, token=None) as mock:
        assert mock.token is None
        assert MockClient(mock.control_url).journal() == []
        assert control(mock.control_port)[0] == 200


# --- the command line: --token-file -------------------------------------------------------------


def start_cli(*args: str) -> tuple[subprocess.Popen, dict]:
    argv = [sys.executable, "-m", "higress_local.mock", "--port", "0", "--quiet", *args]
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + DEADLINE_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                line = process.stdout.readline()
                if not line:
                    return process, {}
                return process, json.loads(line)
    process.kill()
    process.wait()
    raise AssertionError(f"no listening line within {DEADLINE_SECONDS}s")


def stop_cli(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.stdout.close()
    process.stderr.close()


def test_cli_with_a_token_file_requires_that_token(tmp_path):
    token_file = tmp_path / "mock.token"
    token_file.write_text("s3cret-token-for-this-stack\n")
    token_file.chmod(0o600)
    process, listening = start_cli("--token-file", str(token_file), "--name", "svc-auth")
    try:
        port = listening["control_port"]
        assert control(port)[0] == 401
        assert control(port, headers={"Authorization": "Bearer s3cret-token-for-this-stack"})[0] == 200
        client = MockClient(f"http://127.0.0.1:{port}", token="s3cret-token-for-this-stack")
        assert client.health()["name"] == "svc-auth" and client.journal() == []
        assert MockClient(f"http://127.0.0.1:{port}").health()["ok"] is True
    finally:
        stop_cli(process)


def test_cli_without_a_token_file_needs_no_token():
    process, listening = start_cli()
    try:
        assert MockClient(f"http://127.0.0.1:{listening['control_port']}").journal() == []
    finally:
        stop_cli(process)


@pytest.mark.parametrize(("mode", "text", "message"), [
    (0o644, "tok", "readable by others (mode 644); chmod 600 it"),
    (0o600, "  \n", "is empty"),
])
def test_cli_refuses_an_unusable_token_file(tmp_path, mode, text, message):
    token_file = tmp_path / "mock.token"
    token_file.write_text(text)
    os.chmod(token_file, mode)
    done = subprocess.run([sys.executable, "-m", "higress_local.mock", "--token-file", str(token_file)],
                          cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_SECONDS)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_cli_reports_a_missing_token_file(tmp_path):
    done = subprocess.run([sys.executable, "-m", "higress_local.mock", "--token-file", str(tmp_path / "none")],
                          cwd=ROOT, capture_output=True, text=True, timeout=DEADLINE_SECONDS)
    assert done.returncode == 2 and "token file" in done.stderr and "Traceback" not in done.stderr
