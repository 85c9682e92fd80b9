"""`hlocal new NAME --template mcp`: the generated MCP server builds, serves, answers the reference MCP
client through the gateway, probes and tests green as written, offline from the shared module proxy.

Every command is the real CLI in a child process, run from the project folder as a user would.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sdk_build import sdk_build_env
from support import kill_processes_mentioning, processes_mentioning
from test_new_plugin import hlocal, needs_go, needs_proxy

pytestmark = pytest.mark.slow


def test_new_mcp_server_lists_calls_probes_and_tests_green_as_generated(tmp_path: Path) -> None:
    needs_go()
    needs_proxy()
    env = sdk_build_env()
    project = tmp_path / "x"
    created = hlocal(tmp_path, "new", "x", "--template", "mcp", env=env)
    assert created.returncode == 0, created
    assert "hlocal mcp call get_weather city=Hangzhou" in created.stdout
    try:
        up = hlocal(project, "up", env=env)
        assert up.returncode == 0, up
        assert "built x in" in up.stderr and "x is up on the native runtime" in up.stdout

        tools = hlocal(project, "mcp", "tools", env=env)
        assert tools.returncode == 0, tools
        assert tools.stdout.splitlines() == [
            "get_weather  Current weather of a city, from the weather REST API behind the route",
            "    arguments: city (string, required)"]
        listed = hlocal(project, "mcp", "tools", "--json", env=env)
        assert listed.json()[0]["inputSchema"]["properties"]["city"]["type"] == "string", listed

        called = hlocal(project, "mcp", "call", "get_weather", "city=Hangzhou", env=env)
        assert called.returncode == 0, called
        assert called.stdout == "Hangzhou: sunny, 21 °C\n"
        as_json = hlocal(project, "mcp", "call", "get_weather", "city=Hangzhou", "--json", env=env)
        assert json.loads(as_json.stdout) == {"content": [{"type": "text", "text": "Hangzhou: sunny, 21 °C"}],
                                              "isError": False}

        failed = hlocal(project, "mcp", "call", "get_weather", "city=Atlantis", env=env)
        assert failed.returncode == 1, failed  # the stubbed API answers 404: a tool error
        assert "error: tool 'get_weather' reported an error: no weather for Atlantis: the API answered 404" \
            in failed.stderr
        unknown = hlocal(project, "mcp", "call", "get_wether", env=env)
        assert unknown.returncode == 1 and "has no tool 'get_wether'" in unknown.stderr, unknown
        assert "its tools: get_weather" in unknown.stderr

        probed = hlocal(project, "probe", env=env)
        assert probed.returncode == 0, probed
        assert "PASS  weather of a city" in probed.stdout and "2 passed, 0 failed" in probed.stdout

        config = project / "hlocal.yaml"  # a probe that must fail: probes are read when `probe` runs
        config.write_text(config.read_text() + "  - name: wrong forecast\n"
                          "    mcp: {tool: get_weather, arguments: {city: Hangzhou}}\n"
                          "    expect: {text_contains: rain, is_error: true}\n")
        wrong = hlocal(project, "probe", "wrong forecast", env=env)
        assert wrong.returncode == 1, wrong
        assert "FAIL  wrong forecast" in wrong.stdout
        assert "tool isError: expected True, got False" in wrong.stdout
        assert "tool text: expected \"contains 'rain'\", got 'Hangzhou: sunny, 21 °C'" in wrong.stdout

        tested = hlocal(project, "test", env=env)
        assert tested.returncode == 0, tested
        assert "4 passed" in tested.stdout

        down = hlocal(project, "down", env=env)
        assert down.returncode == 0, down
        assert "stopped" in down.stdout
        gone = hlocal(project, "mcp", "tools", env=env)
        assert gone.returncode == 3 and "error: stack 'x' is not running" in gone.stderr, gone
    finally:
        hlocal(project, "down", env=env)
        stray = processes_mentioning(str(project / ".hlocal"))
        kill_processes_mentioning(str(project / ".hlocal"))
    assert not stray, f"processes left behind: {stray}"
