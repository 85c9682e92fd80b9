"""The mock backend: echo, chunked bodies, keep-alive, stubs, SSE, journal, control API and CLI."""

from __future__ import annotations

import ast
import base64
import http.client
import importlib.util
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support import wait_for

from higress_local.mock import MockClient, MockClientError, MockServer, StubConfigError, load_config
from higress_local.mock.server import LOOP_ENV, _base_url

MOCK_DIR = Path(__file__).resolve().parents[2] / "higress_local" / "mock"
DEADLINE_SECONDS = 10.0
HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None


@pytest.fixture
def mock():
    with MockServer(quiet=True) as server:
        yield server


@pytest.fixture
def client(mock):
    return mock.client()


def call(port, method="GET", path="/", body=None, headers=(), conn=None):
    """Send one request; return (status, headers message, body bytes)."""
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE_SECONDS)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in headers:
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    return response.status, response.headers, response.read()


def echo(port, *args, **kwargs):
    status, _, body = call(port, *args, **kwargs)
    assert status == 200
    return json.loads(body)


def raw_exchange(port, data: bytes) -> bytes:
    """Send raw bytes, half-close, and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE_SECONDS) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# --- echo ---------------------------------------------------------------------------------------


def test_echo_describes_method_path_query_and_repeated_headers(mock):
    doc = echo(
        mock.port,
        "PATCH",
        "/a/b?x=1&y=&x=2",
        headers=[("X-Multi", "one"), ("X-Other", "o"), ("x-multi", "two")],
    )
    assert doc["method"] == "PATCH"
    assert doc["path"] == "/a/b"
    assert doc["query"] == {"x": ["1", "2"], "y": [""]}
    assert doc["headers"]["x-multi"] == ["one", "two"]
    assert doc["headers"]["x-other"] == ["o"]
    assert doc["http_version"] == "HTTP/1.1"
    assert doc["body"] == "" and doc["json"] is None


def test_echo_parses_a_json_body(mock):
    doc = echo(mock.port, "POST", "/j", body=b'{"a": [1, 2], "b": null}')
    assert doc["body"] == '{"a": [1, 2], "b": null}'
    assert doc["json"] == {"a": [1, 2], "b": None}


def test_echo_keeps_text_that_is_not_json(mock):
    doc = echo(mock.port, "POST", "/t", body="héllo".encode())
    assert doc["body"] == "héllo" and doc["json"] is None and "body_base64" not in doc


def test_echo_base64_encodes_a_binary_body(mock):
    data = bytes(range(256))
    doc = echo(mock.port, "PUT", "/bin", body=data)
    assert doc["body"] is None
    assert base64.b64decode(doc["body_base64"]) == data


def test_echo_accepts_any_method(mock):
    assert echo(mock.port, "PURGE", "/cache")["method"] == "PURGE"


def test_head_reply_has_length_but_no_body(mock):
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=DEADLINE_SECONDS)
    status, headers, body = call(mock.port, "HEAD", "/h", conn=conn)
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert echo(mock.port, "GET", "/after", conn=conn)["path"] == "/after"


# --- request framing and connections ------------------------------------------------------------


def test_chunked_request_body_is_echoed_whole(mock):
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=DEADLINE_SECONDS)
    parts = [b'{"model": ', b'"m", ', b'"n": 3}']
    conn.request(
        "POST", "/chunked", body=iter(parts), headers={"Transfer-Encoding": "chunked"}, encode_chunked=True
    )
    response = conn.getresponse()
    doc = json.loads(response.read())
    assert response.status == 200
    assert doc["body"] == '{"model": "m", "n": 3}'
    assert doc["json"] == {"model": "m", "n": 3}
    assert doc["headers"]["transfer-encoding"] == ["chunked"]


def test_chunked_body_with_extensions_and_trailers(mock):
    request = (
        b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        b"5;ext=1\r\nhello\r\n"
        b"6\r\n world\r\n"
        b"0\r\nX-Checksum: abc\r\nX-Checksum: def\r\n\r\n"
    )
    head, _, body = raw_exchange(mock.port, request).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    doc = json.loads(body)
    assert doc["body"] == "hello world"
    assert doc["trailers"] == {"x-checksum": ["abc", "def"]}


def test_malformed_chunk_gets_400_and_the_connection_closes(mock):
    reply = raw_exchange(mock.port, b"POST /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"Connection: close" in reply and b"invalid chunk size" in reply


def test_keep_alive_serves_several_requests_on_one_connection(mock):
    mock.set_stubs([{"match": {"path": "/sse"}, "respond": {"events": ["a", "b"]}}])
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=DEADLINE_SECONDS)
    assert echo(mock.port, "GET", "/first", conn=conn)["path"] == "/first"
    sock = conn.sock
    assert echo(mock.port, "POST", "/second", body=b"x", conn=conn)["body"] == "x"
    assert call(mock.port, "GET", "/sse", conn=conn)[2] == b"data: a\n\ndata: b\n\n"
    assert echo(mock.port, "GET", "/fourth", conn=conn)["path"] == "/fourth"
    assert conn.sock is sock  # http.client reconnects silently; the same socket proves reuse


def test_a_client_hanging_up_mid_body_leaves_the_server_working(mock):
    with socket.create_connection(("127.0.0.1", mock.port), timeout=DEADLINE_SECONDS) as sock:
        sock.sendall(b"POST /cut HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly ten b")
    assert echo(mock.port, "GET", "/next")["path"] == "/next"
    assert [entry["path"] for entry in mock.journal()] == ["/next"]


def test_stop_closes_idle_keep_alive_connections():
    server = MockServer(quiet=True).start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE_SECONDS)
    echo(server.port, conn=conn)
    server.stop()
    assert conn.sock.recv(1) == b""  # the server closed its end instead of leaving it parked
    server.stop()  # stopping twice is harmless


# --- stubs --------------------------------------------------------------------------------------

STUBS = [
    {"match": {"path": "/exact"}, "respond": {"status": 201, "headers": {"X-Stub": "exact"}, "body": "E"}},
    {"match": {"path_prefix": "/pre/"}, "respond": {"json": {"prefix": True}}},
    {"match": {"path_regex": "/items/[0-9]+"}, "respond": {"body": "item"}},
    {"match": {"method": "delete", "path": "/m"}, "respond": {"status": 204}},
    {"match": {"headers": {"X-Tenant": "blue"}}, "respond": {"body": "blue"}},
    {"match": {"query": {"mode": "json"}}, "respond": {"json": [1], "headers": {"Content-Type": "application/x"}}},
    {"match": {"path": "/echo"}, "respond": {"echo": True, "status": 202, "headers": {"X-Echo": ["1", "2"]}}},
]


@pytest.fixture
def stubbed():
    with MockServer({"stubs": STUBS}, quiet=True) as server:
        yield server


def test_exact_path_stub_sets_status_headers_and_body(stubbed):
    status, headers, body = call(stubbed.port, "GET", "/exact?q=1")
    assert (status, headers["X-Stub"], body) == (201, "exact", b"E")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert call(stubbed.port, "GET", "/exact/more")[0] == 200  # exact means exact: echo


def test_prefix_stub_serves_json(stubbed):
    status, headers, body = call(stubbed.port, "GET", "/pre/anything")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"prefix": True}


def test_regex_stub_must_match_the_whole_path(stubbed):
    assert call(stubbed.port, "GET", "/items/42")[2] == b"item"
    assert json.loads(call(stubbed.port, "GET", "/items/42/x")[2])["path"] == "/items/42/x"


def test_method_match_is_case_insensitive_and_required(stubbed):
    status, headers, body = call(stubbed.port, "DELETE", "/m")
    assert status == 204 and body == b"" and "Content-Length" not in headers
    assert call(stubbed.port, "GET", "/m")[0] == 200


def test_header_stub_matches_any_value_of_the_header(stubbed):
    assert call(stubbed.port, "GET", "/h", headers=[("X-Tenant", "red"), ("X-Tenant", "blue")])[2] == b"blue"
    assert call(stubbed.port, "GET", "/h", headers=[("X-Tenant", "red")])[0] == 200


def test_query_stub_and_a_given_content_type_wins(stubbed):
    status, headers, body = call(stubbed.port, "GET", "/q?mode=json")
    assert headers["Content-Type"] == "application/x" and json.loads(body) == [1]


def test_echo_stub_uses_its_status_and_headers(stubbed):
    status, headers, body = call(stubbed.port, "POST", "/echo", body=b"{}")
    assert status == 202 and headers.get_all("X-Echo") == ["1", "2"]
    assert json.loads(body)["json"] == {}


def test_first_matching_stub_wins(mock):
    mock.set_stubs([{"match": {"path_prefix": "/"}, "respond": {"body": "first"}}, {"respond": {"body": "second"}}])
    assert call(mock.port, "GET", "/x")[2] == b"first"


def test_delay_ms_holds_the_reply_back(mock):
    mock.set_stubs([{"respond": {"delay_ms": 200, "body": "late"}}])
    started = time.monotonic()
    assert call(mock.port)[2] == b"late"
    assert time.monotonic() - started >= 0.2


def test_sse_events_stream_in_order_with_sse_framing(mock):
    events = ["plain", {"event": "delta", "data": {"n": 1}, "id": 7}, {"data": "two\nlines"}, {"retry": 50}]
    mock.set_stubs([{"match": {"path": "/stream"}, "respond": {"events": events, "interval_ms": 100}}])
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=DEADLINE_SECONDS)
    started = time.monotonic()
    conn.request("GET", "/stream")
    response = conn.getresponse()
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Transfer-Encoding"] == "chunked"
    frames, arrivals, buffer = [], [], b""
    while len(frames) < len(events):
        chunk = response.read1(65536)
        assert chunk, f"stream ended after {frames}"
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            frames.append(frame + b"\n\n")
            arrivals.append(time.monotonic())
    assert frames == [
        b"data: plain\n\n",
        b'event: delta\nid: 7\ndata: {"n": 1}\n\n',
        b"data: two\ndata: lines\n\n",
        b"retry: 50\n\n",
    ]
    assert response.read() == b""  # the stream ends cleanly with the last chunk
    assert arrivals[-1] - started >= 0.3  # three intervals of 100 ms passed between the events


def test_sse_events_are_sent_as_they_are_produced(mock):
    # The second event is an hour away, so seeing the first proves it was not held back.
    mock.set_stubs([{"respond": {"events": ["now", "later"], "interval_ms": 3_600_000}}])
    conn = http.client.HTTPConnection("127.0.0.1", mock.port, timeout=DEADLINE_SECONDS)
    conn.request("GET", "/")
    response, received = conn.getresponse(), b""
    while not received.endswith(b"\n\n"):
        chunk = response.read1(65536)
        assert chunk, f"stream ended after {received!r}"
        received += chunk
    assert received == b"data: now\n\n"
    conn.close()


def test_stop_ends_a_pending_delay():
    server = MockServer({"stubs": [{"respond": {"delay_ms": 3_600_000}}]}, quiet=True).start()
    outcome = []

    def slow_request():
        try:
            call(server.port)
        except (http.client.HTTPException, OSError) as exc:
            outcome.append(exc)

    worker = threading.Thread(target=slow_request)
    worker.start()
    wait_for(server.journal, DEADLINE_SECONDS, "the delayed request to reach the journal")
    server.stop()
    worker.join(DEADLINE_SECONDS)
    assert not worker.is_alive() and outcome, "the delayed request outlived stop()"


# --- journal and control API --------------------------------------------------------------------


def test_journal_records_every_request_with_stub_and_status(mock, client):
    mock.set_stubs([{"match": {"path": "/s"}, "respond": {"status": 418}}])
    call(mock.port, "GET", "/s")
    call(mock.port, "POST", "/e?k=v", body=b"\xff\x00", headers=[("X-Id", "r1")])
    first, second = client.journal()
    assert (first["path"], first["stub"], first["status"]) == ("/s", 0, 418)
    assert second["seq"] == first["seq"] + 1 and second["time"] >= first["time"]
    assert (second["method"], second["stub"], second["status"]) == ("POST", None, 200)
    assert second["query"] == {"k": ["v"]} and second["headers"]["x-id"] == ["r1"]
    assert second["body"] is None and base64.b64decode(second["body_base64"]) == b"\xff\x00"
    assert mock.journal() == client.journal()


def test_journal_filters_since_header_and_limit(mock, client):
    for number in range(4):
        call(mock.port, "GET", f"/{number}", headers=[("X-Request-Id", f"id-{number % 2}")])
    assert [e["path"] for e in client.journal(since=2)] == ["/2", "/3"]
    assert [e["path"] for e in client.find("x-request-id", "id-1")] == ["/1", "/3"]
    assert [e["path"] for e in client.journal(header="X-Request-Id:id-0", limit=1)] == ["/2"]
    assert [e["path"] for e in mock.journal(header=("X-Request-Id", "id-0"))] == ["/0", "/2"]
    assert client.last_seq() == 4


def test_clearing_the_journal_keeps_seq_counting(mock, client):
    call(mock.port, "GET", "/old")
    client.clear()
    assert client.journal() == []
    call(mock.port, "GET", "/new")
    assert [(e["seq"], e["path"]) for e in client.journal()] == [(2, "/new")]


def test_control_api_is_not_served_on_the_backend_port(mock, client):
    doc = echo(mock.port, "GET", "/__hlocal/journal")
    assert doc["path"] == "/__hlocal/journal" and "entries" not in doc
    assert [e["path"] for e in client.journal()] == ["/__hlocal/journal"]


def test_health_names_the_mock_and_its_ports(mock, client):
    assert client.health() == {"ok": True, "name": "backend", "port": mock.port, "control_port": mock.control_port}


def test_stubs_are_replaced_through_the_control_api(mock, client):
    stubs = [{"match": {"path": "/new"}, "respond": {"body": "new"}}]
    client.set_stubs(stubs)
    assert client.stubs() == stubs
    assert call(mock.port, "GET", "/new")[2] == b"new"
    client.set_stubs([])
    assert call(mock.port, "GET", "/new")[0] == 200 and client.stubs() == []


def test_invalid_stubs_sent_to_the_control_api_are_rejected_whole(mock, client):
    client.set_stubs([{"respond": {"body": "kept"}}])
    with pytest.raises(StubConfigError, match=r"^stubs\[1\]\.respond\.status: expected an integer 100-599"):
        client.set_stubs([{"respond": {}}, {"respond": {"status": 700}}])
    assert call(mock.port)[2] == b"kept"


def test_control_api_answers_unknown_paths_methods_and_bad_queries(mock, client):
    auth = [("Authorization", f"Bearer {mock.token}")]
    assert call(mock.control_port, "GET", "/nope", headers=auth)[0] == 404
    status, headers, _ = call(mock.control_port, "POST", "/__hlocal/journal", body=b"", headers=auth)
    assert status == 405 and headers["Allow"] == "GET, DELETE"
    assert call(mock.control_port, "GET", "/__hlocal/journal?since=x", headers=auth)[0] == 400
    assert call(mock.control_port, "GET", "/__hlocal/journal?header=nocolon", headers=auth)[0] == 400
    assert call(mock.control_port, "PUT", "/__hlocal/stubs", body=b"not json", headers=auth)[0] == 400


def test_client_reports_an_unreachable_mock():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(MockClientError, match="cannot reach the mock"):
            MockClient(f"http://127.0.0.1:{port}", timeout=2).health()


@pytest.mark.parametrize(
    ("stubs", "message"),
    [
        ("nope", "stubs: expected a list"),
        ([{"respond": {"status": "200"}}], "stubs[0].respond.status: expected an integer 100-599"),
        ([{}, {"respond": {"status": 99}}], "stubs[1].respond.status: expected an integer 100-599"),
        ([{"respond": {"status": True}}], "stubs[0].respond.status: expected an integer 100-599"),
        ([{"match": {"paht": "/x"}}], "stubs[0].match.paht: unknown field"),
        ([{"match": {"path": "/a", "path_prefix": "/"}}], "stubs[0].match: give only one of path"),
        ([{"match": {"path_regex": "("}}], "stubs[0].match.path_regex: invalid regular expression"),
        ([{"match": {"headers": {"x": 1}}}], "stubs[0].match.headers.x: expected a string"),
        ([{"respond": {"body": "a", "json": 1}}], "stubs[0].respond: give only one of body, json, events, echo"),
        ([{"respond": {"body": 5}}], "stubs[0].respond.body: expected a string"),
        ([{"respond": {"delay_ms": -1}}], "stubs[0].respond.delay_ms: expected a number of milliseconds"),
        ([{"respond": {"interval_ms": 5}}], "stubs[0].respond.interval_ms: only applies together with events"),
        ([{"respond": {"events": [{"event": "a\nb"}]}}], "stubs[0].respond.events[0].event: must be a single line"),
        ([{"respond": {"events": [{}]}}], "stubs[0].respond.events[0]: expected a string or an object"),
        ([{"respond": {"headers": {"Content-Length": "1"}}}], "stubs[0].respond.headers.Content-Length: the mock"),
        ([{"respond": {"headers": {"X": "a\r\nb"}}}], "stubs[0].respond.headers.X: expected a single-line"),
        ([{"respond": {"json": float("nan")}}], "stubs[0].respond.json: not a JSON value"),
    ],
)
def test_invalid_stub_configs_name_the_stub_and_field(stubs, message):
    with pytest.raises(StubConfigError) as caught:
        load_config({"stubs": stubs})
    assert str(caught.value).startswith(message)


def test_config_rejects_unknown_top_level_keys():
    with pytest.raises(StubConfigError, match=r"^config\.stub: unknown field"):
        MockServer({"stub": []})


# --- packaging and command line -----------------------------------------------------------------


# Imported when installed, else done without: the docker runtime's plain python image lacks them.
OPTIONAL_IMPORTS = {"uvloop"}


def test_package_imports_only_the_standard_library_and_itself():
    optional_found = set()
    for source in sorted(MOCK_DIR.glob("*.py")):
        tree = ast.parse(source.read_text(), str(source))
        guarded = {id(node) for node in ast.walk(tree) if isinstance(node, ast.Try)
                   and any(ast.unparse(h.type or ast.Name("")) == "ImportError" for h in node.handlers)
                   for node in node.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{source.name} imports from outside the package"
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                for name in names:
                    root = name.split(".")[0]
                    if root in OPTIONAL_IMPORTS:
                        assert id(node) in guarded, f"{source.name}: {name} must be optional (except ImportError)"
                        optional_found.add(root)
                        continue
                    assert root in sys.stdlib_module_names or root == "__future__", f"{source.name}: {name}"
    assert optional_found == OPTIONAL_IMPORTS


def read_listening_line(process: subprocess.Popen) -> dict:
    """Wait, with a deadline, for the JSON line the CLI prints once it listens."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                line = process.stdout.readline()
                assert line, f"mock exited early: {process.wait()} {process.stderr.read()}"
                return json.loads(line)
    raise AssertionError(f"no listening line within {DEADLINE_SECONDS}s")


@pytest.mark.parametrize("layout", ["host", "container"])
def test_cli_serves_until_sigterm_and_exits_zero(tmp_path, layout):
    config = tmp_path / "stubs.json"
    config.write_text(json.dumps({"stubs": [{"match": {"path": "/stub"}, "respond": {"body": "hi"}}]}))
    env = {**os.environ}
    env.pop(LOOP_ENV, None)  # the mock's own choice: uvloop where it is installed
    if layout == "host":
        module, cwd = "higress_local.mock", MOCK_DIR.parents[1]
    else:
        # As the docker runtime runs it: the directory alone, importable as hlocal_mock.
        shutil.copytree(MOCK_DIR, tmp_path / "hlocal_mock", ignore=shutil.ignore_patterns("__pycache__"))
        module, cwd = "hlocal_mock", tmp_path
        env.pop("PYTHONPATH", None)
        # The plain python image has no uvloop: shadow the installed one, so the mock must do without.
        (tmp_path / "uvloop.py").write_text("raise ImportError('not in the plain python image')\n")
    argv = [sys.executable, "-m", module, "--port", "0", "--config", str(config), "--name", "api"]
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listening = read_listening_line(process)
        assert listening["event"] == "listening" and listening["name"] == "api"
        assert listening["loop"] == ("uvloop" if layout == "host" and HAVE_UVLOOP else "asyncio")
        assert call(listening["port"], "GET", "/stub")[2] == b"hi"
        assert echo(listening["port"], "GET", "/other")["path"] == "/other"
        health = MockClient(f"http://127.0.0.1:{listening['control_port']}").health()
        assert health["name"] == "api" and health["port"] == listening["port"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE_SECONDS) == 0
        assert "api GET /stub 200" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


@pytest.mark.parametrize("host, expected", [
    ("0.0.0.0", "http://127.0.0.1:8"), ("", "http://127.0.0.1:8"), ("::", "http://[::1]:8"),
    ("fe80::1", "http://[fe80::1]:8"), ("localhost", "http://localhost:8"),
])
def test_base_url_reaches_the_bound_host(host, expected):
    assert _base_url(host, 8) == expected


def test_wildcard_bound_mock_is_reached_through_its_urls():
    with MockServer(host="0.0.0.0", quiet=True) as server:
        assert server.control_url == f"http://127.0.0.1:{server.control_port}"
        assert server.client().health()["ok"] is True
