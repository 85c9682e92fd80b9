"""MCP's SSE transport on the embedded runtime: Higress's mcp-session, emulated by hlocal's session process.

The official `amap-tools` MCP server (built from Higress's source) behind `gateway.mcp_server`, driven by
the reference MCP client SDK's SSE transport (`mcp.client.sse.sse_client`) and by raw HTTP where the wire
matters: the endpoint event, the 405, an unknown session, Higress's 5 s keep-alive ping, a closed stream
freeing its session, and `hlocal down` leaving nothing running.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from support import Project, processes_mentioning, wait_for

pytestmark = pytest.mark.slow

WEATHER = {"status": "1", "count": "1", "info": "OK",
           "forecasts": [{"city": "Hangzhou", "adcode": "330100", "casts": [{"date": "2026-12-07", "dayweather": "Sunny"}]}]}
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2024-11-05", "capabilities": {},
                         "clientInfo": {"name": "raw", "version": "0"}}}


def _config(**mcp_server: Any) -> dict[str, Any]:
    return {
        "gateway": {"port": 0, "mcp_server": {"enable": True, "sse_path_suffix": "/sse", "match_list": [
            {"match_rule_domain": "*", "match_rule_path": "/mcp", "match_rule_type": "prefix"}], **mcp_server}},
        "plugins": [{"name": "amap", "wasm": "amap-tools.wasm",
                     "config": {"server": {"name": "amap-tools", "config": {"apiKey": "test-key-123"}}}}],
        "routes": [{"name": "mcp", "prefix": "/mcp"}],
        "backend": {"stubs": [
            {"match": {"path": "/v3/weather/weatherInfo"}, "respond": {"status": 200, "json": WEATHER}}]},
    }


@pytest.fixture(scope="module")
def amap_sse(module_projects, higress_plugin_wasm) -> Project:
    project = module_projects(_config(), files={"amap-tools.wasm": higress_plugin_wasm("mcp-servers/amap-tools")},
                              name="amapsse", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def _port(project: Project) -> int:
    state = project.state()
    assert state is not None, "the stack is not up"
    return state["gateway_port"]


def _sessions(project: Project) -> list[str]:
    state = project.state()
    assert state is not None
    control = state["components"]["mcp-session"]["ports"]["control"]
    conn = http.client.HTTPConnection("127.0.0.1", control, timeout=5)
    try:
        conn.request("GET", "/__hlocal/sessions")
        return json.loads(conn.getresponse().read())["sessions"]
    finally:
        conn.close()


def _alive(pid: int) -> bool:
    """A live process (a zombie awaiting its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _with_sse_session(url: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from mcp import ClientSession
    from mcp.client.sse import sse_client

    async def main() -> Any:
        with anyio.fail_after(60):
            async with sse_client(url) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await work(session)

    return anyio.run(main)


class RawStream:
    """An SSE stream read by hand: the status, the headers and each event as it arrives."""

    def __init__(self, port: int, path: str, method: str = "GET") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        self.response = http.client.HTTPResponse(self.sock, method=method)
        self.response.begin()
        self.buffer = b""

    def event(self) -> tuple[str, str]:
        """The next event (name, data); a socket timeout (15 s) fails the test."""
        while b"\n\n" not in self.buffer:
            chunk = self.response.read1(4096)
            assert chunk, "the stream ended"
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n\n", 1)
        fields = dict(line.split(": ", 1) for line in raw.decode().split("\n"))
        return fields["event"], fields["data"]

    def close(self) -> None:
        self.response.close()
        self.sock.close()


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_check_names_the_emulation(amap_sse: Project) -> None:
    check = amap_sse.hlocal("check", "--json")
    assert check.returncode == 0, check
    doc = check.json()
    assert "mcp_sse" in {e["key"] for e in doc["emulations"]}
    assert any(n.startswith("gateway.mcp_server: Higress's mcp-session") and "no Redis" in n for n in doc["notes"])


def test_sse_client_initializes_lists_and_calls_a_tool(amap_sse: Project) -> None:
    async def work(session: Any) -> tuple[Any, Any]:
        return await session.list_tools(), await session.call_tool("maps_weather", {"city": "Hangzhou"})

    listed, result = _with_sse_session(f"http://127.0.0.1:{_port(amap_sse)}/mcp/sse", work)
    assert "maps_weather" in {tool.name for tool in listed.tools}
    assert not result.is_error
    assert json.loads(result.content[0].text) == WEATHER


def test_streamable_http_on_the_same_route_is_untouched(amap_sse: Project) -> None:
    # A message without sessionId is no business of mcp-session: it takes the route as before.
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> Any:
        with anyio.fail_after(60):
            async with streamable_http_client(f"http://127.0.0.1:{_port(amap_sse)}/mcp") as (read, write, *_):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    return await session.list_tools()

    assert "maps_weather" in {tool.name for tool in anyio.run(main).tools}
    def access_lines() -> list[dict[str, Any]]:
        text = (amap_sse.state_dir / "logs" / "access.log").read_text()
        return [json.loads(line) for line in text.splitlines()]

    # Envoy flushes its access log about once a second.
    wait_for(lambda: any(line["path"] == "/mcp" for line in access_lines()), 10, "the access log lines of /mcp")
    lines = access_lines()
    plain = [line["route_name"] for line in lines if line["method"] == "POST" and line["path"] == "/mcp"]
    assert plain and set(plain) == {"mcp"}
    # A session's message passes twice: to the session process, then (forwarded) to the route.
    routed = {line["route_name"] for line in lines if "sessionId=" in (line["path"] or "")}
    assert routed == {"hlocal.mcp-session.message", "mcp"}


def test_endpoint_event_ping_and_a_reply_on_the_stream(amap_sse: Project) -> None:
    port = _port(amap_sse)
    stream = RawStream(port, "/mcp/sse?tenant=a")
    try:
        assert stream.response.status == 200
        assert stream.response.getheader("content-type") == "text/event-stream"
        assert stream.response.getheader("cache-control") == "no-cache"
        name, endpoint = stream.event()
        assert name == "endpoint"
        split = urlsplit(endpoint)
        assert split.path == "/mcp"
        query = parse_qs(split.query)
        assert query["tenant"] == ["a"] and len(query["sessionId"][0]) == 36
        assert query["sessionId"][0] in _sessions(amap_sse)
        status, body = _post(port, endpoint, INITIALIZE)
        # The wasm server's own answer goes back to the POST (as through Higress's mcp-session) ...
        assert status == 200, body
        assert json.loads(body)["result"]["serverInfo"]["name"] == "amap-tools"
        # ... and is written on the session's stream.
        name, data = stream.event()
        assert name == "message" and json.loads(data) == json.loads(body)
        name, data = stream.event()  # nothing else is sent: the next event is Higress's keep-alive
        ping = json.loads(data)
        assert name == "message" and ping["method"] == "ping" and ping["id"].endswith("Z")
    finally:
        stream.close()


def test_other_methods_on_the_sse_path_are_405(amap_sse: Project) -> None:
    status, body = _post(_port(amap_sse), "/mcp/sse", INITIALIZE)
    assert (status, body) == (405, b"Method not allowed")


def test_unknown_session_is_answered_and_its_event_dropped(amap_sse: Project) -> None:
    before = _sessions(amap_sse)
    status, body = _post(_port(amap_sse), "/mcp?sessionId=no-such-session", INITIALIZE)
    assert status == 200 and json.loads(body)["id"] == 1
    assert _sessions(amap_sse) == before
    log = (amap_sse.state_dir / "logs" / "mcp-session.log").read_text()
    assert "session no-such-session has no open stream: reply dropped" in log


def test_closing_the_stream_frees_the_session(amap_sse: Project) -> None:
    stream = RawStream(_port(amap_sse), "/mcp/sse")
    _, endpoint = stream.event()
    session_id = parse_qs(urlsplit(endpoint).query)["sessionId"][0]
    assert session_id in _sessions(amap_sse)
    stream.close()
    wait_for(lambda: session_id not in _sessions(amap_sse), 10, f"session {session_id} to be freed")


def test_paths_outside_the_match_list_reach_the_plugin(amap_sse: Project) -> None:
    # /other/sse matches no rule: mcp-session lets it through, and the MCP server (a plugin on every
    # route) refuses a GET itself (wasm-go: 405 not_support_sse_on_this_endpoint, no body).
    before = _sessions(amap_sse)
    conn = http.client.HTTPConnection("127.0.0.1", _port(amap_sse), timeout=15)
    try:
        conn.request("GET", "/other/sse")
        response = conn.getresponse()
        assert (response.status, response.read()) == (405, b"")
        assert response.getheader("content-type") != "text/event-stream"
    finally:
        conn.close()
    assert _sessions(amap_sse) == before


def test_status_and_logs_name_the_session_process(amap_sse: Project) -> None:
    status = amap_sse.hlocal("status", "--json")
    assert status.returncode == 0, status
    assert any(c["name"] == "mcp-session" and c["state"] == "running" for c in status.json()["components"])
    logs = amap_sse.hlocal("logs", "mcp-session")
    assert logs.returncode == 0 and "mcp-session listening on 127.0.0.1:" in logs.output


def test_docker_runtime_refuses_it_by_name(module_projects) -> None:
    project = module_projects(_config(), name="amapssedocker", runtime="docker")
    result = project.hlocal("render")
    assert result.returncode == 2, result
    assert "gateway.mcp_server" in result.output and "native" in result.output


def test_down_leaves_nothing_running(amap_sse: Project) -> None:
    # Last in the module: it stops the shared stack, with a stream still open.
    stream = RawStream(_port(amap_sse), "/mcp/sse")
    try:
        assert stream.event()[0] == "endpoint"
        component = amap_sse.state()["components"]["mcp-session"]
        # The supervisor and the session process it runs (its command line names no project path).
        pids = {component["pid"], json.loads(Path(component["status_file"]).read_text())["pid"]}
        assert all(_alive(pid) for pid in pids)
        assert any("higress_local.mcpsession" in line for pid, line in processes_mentioning("mcpsession")
                   if pid in pids)
        down = amap_sse.hlocal("down")
        assert down.returncode == 0, down
        assert amap_sse.leftovers() == []
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        stream.close()
