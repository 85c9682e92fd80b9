"""hlocal's MCP client (mcpclient.McpClient) against a real MCP server: the reference SDK's own, over
Streamable HTTP with JSON replies and no session id, as Higress's MCP servers answer. No gateway: these
check the client's facade and its errors; tests/integration/test_new_mcp.py runs it through Envoy."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from support import wait_for

from higress_local.errors import EnvironmentProblem, ExitCode, McpCallFailed
from higress_local.probe.mcpclient import McpClient
from higress_local.system.ports import free_port

SERVER = Path(__file__).resolve().parent.parent / "mcp_reference_server.py"


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: answers(port) or proc.poll() is not None, 30, f"the MCP server on port {port}")
        assert proc.poll() is None, f"the reference MCP server exited with {proc.returncode}"
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_lists_and_calls_tools(server_url: str) -> None:
    with McpClient(server_url) as client:
        tools = {t.name: t for t in client.list_tools()}
        assert sorted(tools) == ["broken", "weather"]
        assert tools["weather"].input_schema["required"] == ["city"]
        result = client.call_tool("weather", {"city": "Hangzhou", "days": 2})
        assert not result.is_error
        assert result.text == "Hangzhou: sunny for 2 day(s)"
        assert result.result["content"] == [{"type": "text", "text": "Hangzhou: sunny for 2 day(s)"}]
        assert client.statuses and set(client.statuses) <= {200, 202}  # every POST answered
        assert client.session.initialize_result.server_info.name == "reference"  # the SDK's own session


def test_a_tool_error_is_a_result_not_an_exception(server_url: str) -> None:
    with McpClient(server_url) as client:
        result = client.call_tool("broken", {"reason": "x"})
    assert result.is_error and result.text == "Error executing tool broken"


def test_the_session_is_closed_on_exit(server_url: str) -> None:
    client = McpClient(server_url)
    with client:
        pass
    assert client.session is None
    with pytest.raises(EnvironmentProblem, match="the MCP session is closed"):
        client.call(lambda: None)


def test_a_path_without_a_server_says_so(server_url: str) -> None:
    wrong = server_url.replace("/mcp", "/nothing")
    with pytest.raises(McpCallFailed) as caught:
        McpClient(wrong).__enter__()
    assert caught.value.message == (f"the MCP server at {wrong} answered initialize with an error: Not Found "
                                    f"(JSON-RPC code -32601)")
    assert "pass --path" in caught.value.hint and caught.value.exit_code == ExitCode.PROBE_FAILED


def test_nothing_listening_is_an_environment_problem() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(EnvironmentProblem) as caught:
        McpClient(url, timeout=5).__enter__()
    assert caught.value.message.startswith(f"cannot reach the MCP server at {url}")


def test_a_jsonrpc_error_names_the_call_and_the_session_stays_usable(server_url: str) -> None:
    with McpClient(server_url) as client:
        with pytest.raises(McpCallFailed) as caught:
            client.call(client.session.read_resource, "x://nope")
        assert caught.value.message == (f"the MCP server at {server_url} answered read_resource with an error: "
                                        f"Unknown resource: x://nope (JSON-RPC code -32602)")
        assert client.call_tool("weather", {"city": "Suzhou"}).text == "Suzhou: sunny for 1 day(s)"
