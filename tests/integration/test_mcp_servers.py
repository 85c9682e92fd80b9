"""MCP servers from Higress's own repository on the embedded runtime (stock Envoy), driven by the
reference MCP client SDK: wasm-go's MCP framework imports proxy_inject_encoded_data_to_filter_chain,
which hlocal emulates in the adapted module.

- `amap-tools` (plugins/wasm-go/mcp-servers/amap-tools, a Go MCP server): initialize, every tool listed,
  a tool whose REST call (ctx.RouteCall, through the route's upstream) the mock backend answers.
- The official `mcp-server` plugin as a REST-to-MCP server, configured with Higress's own
  mcp-servers/mcp-openweather/mcp-server.yaml (`server` plus `tools` with request/response templates).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Awaitable, Callable

import anyio
import pytest
import yaml

from support import Project

pytestmark = pytest.mark.slow

AMAP_TOOLS = {"maps_geo", "maps_regeocode", "maps_ip_location", "maps_weather", "maps_search_detail",
              "maps_bicycling", "maps_direction_walking", "maps_direction_driving",
              "maps_direction_transit_integrated", "maps_distance", "maps_text_search", "maps_around_search"}
WEATHER = {"status": "1", "count": "1", "info": "OK",
           "forecasts": [{"city": "Hangzhou", "adcode": "330100", "casts": [{"date": "2026-12-07", "dayweather": "Sunny"}]}]}
OPENWEATHER = {"weather": [{"description": "light rain"}], "main": {"temp": 11.5, "humidity": 81},
               "wind": {"speed": 3.2}, "name": "Suzhou"}


def _url(project: Project, path: str = "/mcp") -> str:
    state = project.state()
    assert state is not None, "the stack is not up"
    return f"http://127.0.0.1:{state['gateway_port']}{path}"


def _with_session(url: str, work: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    """Run `work(session, initialize_result)` in an initialised MCP session (Streamable HTTP)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> Any:
        with anyio.fail_after(60):
            async with streamable_http_client(url) as (read, write):
                async with ClientSession(read, write) as session:
                    return await work(session, await session.initialize())

    return anyio.run(main)


def _journal(project: Project) -> list[dict[str, Any]]:
    from higress_local.mock.client import MockClient

    state = project.state()
    assert state is not None, "the stack is not up"
    return MockClient(f"http://127.0.0.1:{state['control_port']}", token=state["control_token"]).journal()


@pytest.fixture(scope="module")
def amap(module_projects, higress_plugin_wasm) -> Project:
    project = module_projects(
        {"gateway": {"port": 0},
         "plugins": [{"name": "amap", "wasm": "amap-tools.wasm",
                      "config": {"server": {"name": "amap-tools", "config": {"apiKey": "test-key-123"}}}}],
         "routes": [{"name": "mcp", "prefix": "/mcp"}],
         "backend": {"stubs": [
             {"match": {"path": "/v3/weather/weatherInfo"}, "respond": {"status": 200, "json": WEATHER}},
             {"match": {"path": "/v3/geocode/geo"}, "respond": {"status": 500, "body": "amap is down"}}]}},
        files={"amap-tools.wasm": higress_plugin_wasm("mcp-servers/amap-tools")}, name="amapmcp", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def test_amap_tools_is_emulated_not_refused(amap: Project) -> None:
    check = amap.hlocal("check", "--json")
    assert check.returncode == 0, check
    plugin = next(p for p in check.json()["plugins"] if p["name"] == "amap")
    assert "inject_encoded_data" in json.dumps(plugin)


def test_amap_tools_initialize_and_list_every_tool(amap: Project) -> None:
    async def work(session: Any, init: Any) -> tuple[Any, Any]:
        return init, await session.list_tools()

    init, listed = _with_session(_url(amap), work)
    assert init.server_info.name == "amap-tools"
    assert init.capabilities.tools is not None
    assert {tool.name for tool in listed.tools} == AMAP_TOOLS
    weather = next(tool for tool in listed.tools if tool.name == "maps_weather")
    assert "city" in weather.input_schema["properties"]


def test_amap_weather_call_goes_out_through_the_route(amap: Project) -> None:
    async def work(session: Any, _init: Any) -> Any:
        return await session.call_tool("maps_weather", {"city": "Hangzhou"})

    result = _with_session(_url(amap), work)
    assert not result.is_error
    assert json.loads(result.content[0].text) == WEATHER
    calls = [e for e in _journal(amap) if e["path"] == "/v3/weather/weatherInfo"]
    assert calls, "the tool's REST call never reached the backend"
    assert calls[-1]["query"]["city"] == ["Hangzhou"] and calls[-1]["query"]["key"] == ["test-key-123"]
    assert calls[-1]["headers"]["host"] == ["restapi.amap.com"]


def test_amap_failing_rest_call_is_a_tool_error(amap: Project) -> None:
    async def work(session: Any, _init: Any) -> Any:
        return await session.call_tool("maps_geo", {"address": "West Lake"})

    result = _with_session(_url(amap), work)
    assert result.is_error
    assert "500" in result.content[0].text


def test_amap_unknown_tool_is_a_json_rpc_error(amap: Project) -> None:
    from mcp.shared.exceptions import MCPError

    async def work(session: Any, _init: Any) -> Any:
        try:
            return await session.call_tool("no_such_tool", {})
        except MCPError as exc:
            return exc

    outcome = _with_session(_url(amap), work)
    # wasm-go answers an unknown tool with a JSON-RPC error (or a tool error result on older framework
    # versions); either way the client must see a failure naming the tool.
    if isinstance(outcome, Exception):
        assert "no_such_tool" in str(outcome) or "not found" in str(outcome).lower()
    else:
        assert outcome.is_error and "no_such_tool" in outcome.content[0].text


@pytest.fixture(scope="module")
def openweather(module_projects, higress_plugin_wasm) -> Project:
    from higress_build import higress_src_dir

    mcp_server = higress_plugin_wasm("extensions/mcp-server")
    spec = Path(higress_src_dir(), "mcp-servers", "mcp-openweather", "mcp-server.yaml")
    config = yaml.safe_load(spec.read_text(encoding="utf-8"))
    config["server"]["config"]["apiKey"] = "ow-key"
    assert config["server"].get("type", "rest") == "rest" and config["tools"]
    project = module_projects(
        {"gateway": {"port": 0},
         "plugins": [{"name": "openweather", "wasm": "mcp-server.wasm", "config": config}],
         "routes": [{"name": "mcp", "prefix": "/mcp"}],
         "backend": {"stubs": [
             {"match": {"path": "/data/2.5/weather"}, "respond": {"status": 200, "json": OPENWEATHER}}]}},
        files={"mcp-server.wasm": mcp_server}, name="owmcp", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def test_rest_to_mcp_server_lists_and_calls_templated_tools(openweather: Project) -> None:
    async def work(session: Any, init: Any) -> tuple[Any, Any, Any]:
        return init, await session.list_tools(), await session.call_tool("get_weather", {"city": "Suzhou"})

    init, listed, result = _with_session(_url(openweather), work)
    assert init.server_info.name == "weather-server"
    names = {tool.name for tool in listed.tools}
    assert "get_weather" in names and "get_weather_forecast" in names
    assert not result.is_error
    answer = json.loads(result.content[0].text)
    # The response template renders the REST answer alone (pkg/mcp/server rest_server.go passes only the
    # response body to it), so the example's {{.args.city}} is empty on Higress too.
    assert answer == {"description": "light rain", "temperature": 11.5, "humidity": 81, "wind_speed": 3.2,
                      "city": ""}
    call = [e for e in _journal(openweather) if e["path"] == "/data/2.5/weather"][-1]
    assert call["query"]["city"] == ["Suzhou"] and call["headers"]["x-api-key"] == ["ow-key"]


def test_hlocal_mcp_lists_and_calls_the_official_server(amap: Project) -> None:
    listed = amap.hlocal("mcp", "tools", "--json")
    assert listed.returncode == 0, listed
    assert {tool["name"] for tool in listed.json()} == AMAP_TOOLS
    # city is a string in the tool's schema: the digits stay text (an adcode), as the Go server wants
    called = amap.hlocal("mcp", "call", "maps_weather", "city=330100", "--json")
    assert called.returncode == 0, called
    assert json.loads(called.json()["content"][0]["text"]) == WEATHER
    failed = amap.hlocal("mcp", "call", "maps_geo", "address=West Lake")
    assert failed.returncode == 1 and "500" in failed.stderr


SMOKE_TEST = '''
import json


def test_weather_through_the_fixture(mcp_session, upstream):
    result = mcp_session.call_tool("maps_weather", {"city": "Hangzhou"})
    assert not result.is_error, result.text
    assert json.loads(result.text)["forecasts"][0]["city"] == "Hangzhou"
    assert upstream.last().path == "/v3/weather/weatherInfo"


def test_every_tool_through_the_fixture(mcp_session):
    assert len(mcp_session.list_tools()) == 12
'''


def test_the_pytest_fixture_drives_the_official_server(amap: Project) -> None:
    import subprocess
    import sys

    tests = amap.path / "smoke"
    tests.mkdir(exist_ok=True)
    (tests / "test_amap_smoke.py").write_text(SMOKE_TEST, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
                          cwd=amap.path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
