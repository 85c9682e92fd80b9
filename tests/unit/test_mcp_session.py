"""gateway.mcp_server (Higress's mcp-session, emulated): config checks, match_list as Higress matches,
the endpoint URL, the rendered routes and cluster, and the process's HTTP surface against a fake gateway."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from higress_local.config.project import parse_project
from higress_local.errors import ConfigError
from higress_local.mcpsession.matching import find_rule, match_domain, match_path
from higress_local.mcpsession.server import (FORWARDED_HEADER, HEALTH_PATH, Options, SessionServer, Sessions,
                                             endpoint_url, ping_event)
from higress_local.config.mcp_session import McpMatchRule, McpServer
from higress_local.render.envoy import Layout, render_clusters, render_route_config
from higress_local.system.ports import free_port
from higress_local.render.mcp_session import MCP_SESSION_CLUSTER, MESSAGE_ROUTE, SSE_ROUTE

RULE = {"match_rule_domain": "*", "match_rule_path": "/mcp", "match_rule_type": "prefix"}


def _project(mcp_server: Any, **extra: Any):
    data = {"name": "t", "gateway": {"mcp_server": mcp_server},
            "plugins": [{"name": "amap", "wasm": "amap.wasm"}], **extra}
    return parse_project(data, Path("/tmp/hlocal-test/hlocal.yaml"))


def test_settings_parse_with_higress_defaults() -> None:
    project = _project({"enable": True, "match_list": [RULE], "redis": {"address": "redis:6379", "db": 0}})
    assert project.gateway.mcp_server == McpServer(enable=True, sse_path_suffix="/sse", match_list=(
        McpMatchRule(match_rule_domain="*", match_rule_path="/mcp", match_rule_type="prefix", upstream_type="rest"),))
    assert _project({"enable": False, "match_list": [RULE]}).gateway.mcp_server is None
    assert _project(None).gateway.mcp_server is None


@pytest.mark.parametrize("mcp_server, says", [
    ({"enable": True, "match_list": []}, "mcp-session would handle no request"),
    ({"enable": True, "match_list": [{"match_rule_path": "/mcp"}]}, "match_rule_type: is required"),
    ({"enable": True, "match_list": [{**RULE, "match_rule_type": "glob"}]}, "'glob' is not one of"),
    ({"enable": True, "match_list": [{**RULE, "upstream_type": "sse"}]}, "is not emulated by hlocal"),
    ({"enable": True, "match_list": [{**RULE, "enable_path_rewrite": True}]}, "only for upstream_type sse"),
    ({"enable": True, "match_list": [RULE], "servers": []}, "gateway.mcp_server.servers: is not emulated"),
    ({"enable": True, "match_list": [RULE], "rate_limit": {}}, "rate_limit: is not emulated"),
    ({"enable": True, "match_list": [RULE], "sse_path_suffx": "/sse"}, "did you mean 'sse_path_suffix'"),
    ({"enable": True, "match_list": [RULE], "sse_path_suffix": "sse"}, "is not a path suffix"),
    ({"enable": True, "match_list": [{**RULE, "match_rule_type": "regex", "match_rule_path": "(/mcp"}]},
     "is not a regular expression"),
])
def test_settings_refuse_what_higress_refuses_or_hlocal_does_not_emulate(mcp_server: Any, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _project(mcp_server)
    assert says in f"{caught.value.message} {caught.value.hint}"


def test_matching_follows_higress_match_go() -> None:
    assert match_domain("example.com:8080", "*") and match_domain("api.example.com", "*.example.com")
    assert not match_domain("example.com:8080", "example.com")  # the :authority, port included
    assert match_path("/mcp", "/mcp/sse", "prefix") and not match_path("/mcp", "/x/mcp/sse", "prefix")
    assert match_path("/sse", "/a/sse", "suffix") and match_path("cp/s", "/mcp/sse", "contains")
    assert match_path("^/m.p", "/mcp/sse", "regex") and match_path("cp", "/mcp", "regex")  # unanchored search
    assert match_path("", "/anything", "exact") and not match_path("/mcp", "/mcp/sse", "exact")
    rules = (McpMatchRule("a.com", "/x", "prefix"), McpMatchRule("*", "/x", "prefix", "streamable"))
    assert find_rule(rules, "b.com", "/x/sse") == rules[1]
    assert find_rule(rules, "b.com", "/y/sse") is None


def test_endpoint_url_keeps_the_query_and_sorts_keys_as_go_does() -> None:
    assert endpoint_url("/mcp/sse", "/sse", "", "id-1") == "/mcp?sessionId=id-1"
    assert endpoint_url("/mcp/sse", "/sse", "z=1&a=b c&sessionId=old", "id-1") == "/mcp?a=b+c&sessionId=id-1&z=1"
    assert endpoint_url("/my%20mcp/sse", "/sse", "", "id-1") == "/my%20mcp?sessionId=id-1"
    assert endpoint_url("/my%20mcp/ss%65", "/sse", "", "id-1") == "/my%20mcp?sessionId=id-1"
    name, data = ping_event().split(b"\n")[:2]
    assert name == b"event: message"
    ping = json.loads(data.removeprefix(b"data: "))
    assert ping["jsonrpc"] == "2.0" and ping["method"] == "ping" and ping["id"].endswith("Z")


def test_routes_go_first_with_the_plugins_off_and_the_cluster_points_at_the_process() -> None:
    project = _project({"enable": True, "match_list": [RULE], "sse_path_suffix": "/events"},
                       routes=[{"name": "mcp", "prefix": "/mcp"}])
    host = render_route_config(project)["virtual_hosts"][0]
    sse, message = host["routes"][:2]
    assert (sse["name"], message["name"]) == (SSE_ROUTE, MESSAGE_ROUTE)
    assert sse["match"]["safe_regex"]["regex"] == ".*/events"
    assert message["match"]["query_parameters"] == [{"name": "sessionId", "present_match": True}]
    for route in (sse, message):
        assert route["route"] == {"cluster": MCP_SESSION_CLUSTER, "timeout": "0s"}
        assert route["match"]["headers"] == [{"name": FORWARDED_HEADER, "present_match": True, "invert_match": True}]
        assert route["typed_per_filter_config"]["hlocal.plugin.amap"]["disabled"] is True
    assert host["request_headers_to_remove"] == [FORWARDED_HEADER]
    layout = Layout(flavor="envoy", listen_address="127.0.0.1", listen_port=1, admin_address="127.0.0.1",
                    admin_port=2, backend_address="127.0.0.1", backend_port=3, ecds_dir="/e", xds_dir="/x",
                    mcp_session_port=4567)
    cluster = next(c for c in render_clusters(project, layout) if c["name"] == MCP_SESSION_CLUSTER)
    assert cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"] \
        == {"address": "127.0.0.1", "port_value": 4567}
    plain = _project(None, routes=[{"name": "mcp", "prefix": "/mcp"}])
    assert [r["name"] for r in render_route_config(plain)["virtual_hosts"][0]["routes"]][:1] != [SSE_ROUTE]
    assert "request_headers_to_remove" not in render_route_config(plain)["virtual_hosts"][0]


class FakeGateway(BaseHTTPRequestHandler):
    """Stands in for Envoy + the wasm server: answers what it got, as JSON."""

    protocol_version = "HTTP/1.1"
    seen: list[dict[str, Any]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        FakeGateway.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if "id" not in json.loads(body):  # a notification: 202, no body (wasm-go's json_rpc_ack)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        answer = json.dumps({"jsonrpc": "2.0", "id": json.loads(body)["id"], "result": {}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def session_server() -> Iterator[tuple[int, Sessions]]:
    gateway = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    sessions = Sessions()
    options = Options(settings=McpServer(enable=True, match_list=(McpMatchRule("*", "/mcp", "prefix"),)),
                      gateway=("127.0.0.1", gateway.server_address[1]))
    server = SessionServer(0, options, sessions)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (gateway, server)]
    for thread in threads:
        thread.start()
    try:
        yield server.server_address[1], sessions
    finally:
        for s in (server, gateway):
            s.shutdown()
            s.server_close()
        FakeGateway.seen.clear()


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Host": "h:1", "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_message_is_forwarded_marked_answered_and_published(session_server) -> None:
    port, sessions = session_server
    session_id, events = sessions.open()
    status, body = _post(port, f"/mcp?sessionId={session_id}", {"jsonrpc": "2.0", "id": 7, "method": "tools/list"})
    assert status == 200 and json.loads(body)["id"] == 7
    assert events.get(timeout=5) == b"event: message\ndata: " + body + b"\n\n"
    seen = FakeGateway.seen[-1]
    assert seen["path"] == f"/mcp?sessionId={session_id}" and seen["headers"][FORWARDED_HEADER] == "forwarded"
    assert seen["headers"]["Host"] == "h:1"
    # A notification: 202 with no body, and nothing published (Envoy calls no EncodeData for it).
    assert _post(port, f"/mcp?sessionId={session_id}", {"jsonrpc": "2.0", "method": "x"}) == (202, b"")
    assert events.empty()


def test_unknown_sessions_and_unmatched_paths_are_forwarded_without_an_event(session_server) -> None:
    port, sessions = session_server
    assert _post(port, "/mcp?sessionId=nobody", {"jsonrpc": "2.0", "id": 1, "method": "ping"})[0] == 200
    assert _post(port, "/other/sse", {"jsonrpc": "2.0", "id": 2, "method": "ping"})[0] == 200
    assert [s["path"] for s in FakeGateway.seen] == ["/mcp?sessionId=nobody", "/other/sse"]
    assert _post(port, "/mcp/sse", {"jsonrpc": "2.0", "id": 3, "method": "ping"}) == (405, b"Method not allowed")
    assert sessions.ids() == []


def test_a_reload_with_the_same_mcp_server_needs_no_restart() -> None:
    import dataclasses

    from higress_local.runtime.reload import restart_reasons
    from higress_local.runtime.stage import restart_key
    from higress_local.state import RestartKey

    project = _project({"enable": True, "match_list": [RULE]})
    saved = RestartKey(**json.loads(json.dumps(dataclasses.asdict(restart_key(project)))))  # as state.json keeps it

    class State:
        restart_key = saved
        runtime = "native"

    assert restart_reasons(project, State()) == []  # type: ignore[arg-type]
    changed = _project({"enable": True, "match_list": [RULE], "sse_path_suffix": "/events"})
    assert restart_reasons(changed, State()) == ["gateway settings changed (gateway.mcp_server)"]  # type: ignore[arg-type]


def test_check_says_the_session_process_stands_in_only_when_it_is_on() -> None:
    from higress_local.wasm.plugins import check_project

    def notes(project: Any) -> list[str]:
        return [n for n in check_project(project, "envoy").notes if n.startswith("gateway.mcp_server")]

    on = _project({"enable": True, "match_list": [RULE]}, plugins=[])
    assert len(notes(on)) == 1 and "paths ending /sse" in notes(on)[0] and "native runtime only" in notes(on)[0]
    assert notes(_project(None, plugins=[])) == []


def test_render_lists_the_session_process_with_the_commands_to_run(tmp_path: Path) -> None:
    from higress_local.config.project import load_project
    from higress_local.project.render_stack import render_stack

    (tmp_path / "hlocal.yaml").write_text(
        "name: sse\nruntime: native\ngateway:\n  port: 0\n  mcp_server:\n    enable: true\n"
        "    match_list: [{match_rule_path: /mcp, match_rule_type: prefix}]\n")
    rendered = render_stack(load_project(tmp_path), "native", str(tmp_path / "out"))
    session = [line for line in rendered.instructions if "higress_local.mcpsession" in line]
    assert len(session) == 1 and session[0].endswith(" &")
    routes = json.loads((rendered.directory / "xds" / "routes.json").read_text())
    names = [r["name"] for r in routes["resources"][0]["virtual_hosts"][0]["routes"]]
    assert names[:2] == [SSE_ROUTE, MESSAGE_ROUTE]
    port = int(session[0].split("--port ")[1].split()[0])
    clusters = json.loads((rendered.directory / "xds" / "clusters.json").read_text())["resources"]
    cluster = next(c for c in clusters if c["name"] == MCP_SESSION_CLUSTER)
    assert cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
        "port_value"] == port


def test_bad_and_stalled_bodies_are_refused_without_holding_a_thread() -> None:
    import socket
    import time

    sessions = Sessions()
    options = Options(settings=McpServer(enable=True, match_list=(McpMatchRule("*", "/mcp", "prefix"),)),
                      gateway=("127.0.0.1", 9), read_timeout=0.5)
    server = SessionServer(0, options, sessions)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("POST", "/mcp?sessionId=x", headers={"Content-Length": "-5"})
        assert conn.getresponse().status == 400
        conn.close()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST /mcp?sessionId=x HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n{")
            started = time.monotonic()
            assert sock.recv(100) == b""  # dropped after read_timeout, nothing forwarded
            assert time.monotonic() - started < 4
    finally:
        server.shutdown()
        server.server_close()


def test_command_line_serves_until_sigterm():
    port, control_port = free_port(), free_port()
    settings = json.dumps({"enable": True, "sse_path_suffix": "/sse", "match_list": []})
    process = subprocess.Popen([sys.executable, "-m", "higress_local.mcpsession", "--port", str(port),
                                "--control-port", str(control_port), "--gateway", "127.0.0.1:1",
                                "--settings", settings], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert f"mcp-session listening on 127.0.0.1:{port}" in process.stdout.readline()
        conn = http.client.HTTPConnection("127.0.0.1", control_port, timeout=10)
        conn.request("GET", HEALTH_PATH)
        assert conn.getresponse().status == 200
        conn.close()
        process.terminate()
        process.communicate(timeout=10)
        assert process.returncode == 0  # SIGTERM is a clean stop (system/serve.py)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
