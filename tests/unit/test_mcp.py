"""`hlocal mcp` and mcp probes without a server: tool arguments, probe schema, result evaluation, CLI errors."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from higress_local.project import newplugin
from higress_local.cli.main import main
from higress_local.config.project import parse_project
from higress_local.errors import ConfigError, ExitCode, McpCallFailed
from higress_local.probe.mcpclient import describe_arguments, parse_tool_args, translate
from higress_local.config.models import Expect, McpCall, UpstreamExpect
from higress_local.probe.send import evaluate_tool_result

FILE = Path("/project/hlocal.yaml")
SCHEMA = {"type": "object", "required": ["city"],
          "properties": {"city": {"type": "string"}, "days": {"type": "integer"}, "tags": {"type": "array"}}}


# -- tool arguments ------------------------------------------------------------------------------

@pytest.mark.parametrize("pairs, expected", [
    (["city=Hangzhou"], {"city": "Hangzhou"}),
    (["n=3", "ok=true", "none=null", "xs=[1, 2]"], {"n": 3, "ok": True, "none": None, "xs": [1, 2]}),
    (["text=hello world", "empty="], {"text": "hello world", "empty": ""}),
    (['quoted="3"'], {"quoted": "3"}),
    (["expr=a=b"], {"expr": "a=b"}),  # only the first = splits
    (["obj:={\"a\": [1]}", "n:=2.5"], {"obj": {"a": [1]}, "n": 2.5}),
])
def test_values_are_json_where_they_parse_else_text(pairs: list[str], expected: dict[str, Any]) -> None:
    assert parse_tool_args(pairs) == expected


def test_a_property_declared_string_keeps_the_text_as_given() -> None:
    args = parse_tool_args(["city=110000", "days=3", "tags=[\"a\"]"], SCHEMA)
    assert args == {"city": "110000", "days": 3, "tags": ["a"]}
    assert parse_tool_args(["city:=110000"], SCHEMA) == {"city": 110000}  # := is always JSON


@pytest.mark.parametrize("pairs, message", [
    (["city"], "argument 'city': expected key=value or key:=json"),
    (["=x"], "argument '=x': expected key=value or key:=json"),
    ([":=1"], "argument ':=1': expected key=value or key:=json"),
    (["a=1", "a=2"], "argument 'a' is given twice"),
    (["obj:={bad"], "'obj:={bad': the value after := is not JSON"),
])
def test_bad_arguments_are_usage_errors(pairs: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tool_args(pairs)
    assert caught.value.message.startswith(message)
    assert caught.value.hint and caught.value.exit_code == ExitCode.USAGE


def test_arguments_are_described_on_one_line() -> None:
    assert describe_arguments(SCHEMA) == "city (string, required), days (integer), tags (array)"
    assert describe_arguments({}) == "none"
    assert describe_arguments({"properties": {"x": {"type": ["string", "null"]}}}) == "x (string|null)"


# -- errors from the SDK ------------------------------------------------------------------------

def test_a_jsonrpc_error_is_a_call_failure_with_the_code() -> None:
    from mcp.shared.exceptions import MCPError

    error = translate(MCPError(-32601, "Not Found"), "http://127.0.0.1:1/mcp", "initialize", 30)
    assert isinstance(error, McpCallFailed) and error.exit_code == ExitCode.PROBE_FAILED
    assert error.message == ("the MCP server at http://127.0.0.1:1/mcp answered initialize with an error: "
                             "Not Found (JSON-RPC code -32601)")
    assert "pass --path" in error.hint


def test_timeouts_and_refused_connections_are_typed() -> None:
    assert translate(TimeoutError(), "u", "tools/call", 2).exit_code == ExitCode.TIMEOUT
    refused = translate(ConnectionRefusedError("refused"), "u", "initialize", 2)
    assert refused.exit_code == ExitCode.ENVIRONMENT and "hlocal status" in refused.hint
    assert translate(KeyError("x"), "u", "initialize", 2) is None  # not ours to explain: raised as it is


# -- mcp probes in hlocal.yaml -------------------------------------------------------------------

def parse(*probes: dict[str, Any]):
    return parse_project({"probes": list(probes)}, FILE)


def config_error(*probes: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(*probes)
    return caught.value


def test_an_mcp_probe_parses() -> None:
    project = parse({"name": "w", "mcp": {"tool": "get_weather", "arguments": {"city": "x"}},
                     "expect": {"text_contains": "sunny", "is_error": False, "upstream": {"path": "/weather"}}})
    probe = project.probes[0]
    assert probe.mcp == McpCall(tool="get_weather", arguments={"city": "x"}, path="/mcp", timeout_s=30.0)
    assert probe.expect.text_contains == "sunny" and probe.expect.is_error is False
    assert probe.expect.upstream == UpstreamExpect(path="/weather")
    other = parse({"name": "p", "mcp": {"tool": "t", "path": "/sse/mcp", "timeout_s": 5}})
    assert other.probes[0].mcp == McpCall(tool="t", arguments={}, path="/sse/mcp", timeout_s=5.0)
    assert parse({"name": "h"}).probes[0].mcp is None  # an HTTP probe stays one


@pytest.mark.parametrize("probe, where, hint", [
    ({"name": "p", "mcp": {"tool": "t", "argumnets": {}}}, "probes[0].mcp.argumnets: unknown key",
     "did you mean 'arguments'?"),
    ({"name": "p", "mpc": {"tool": "t"}}, "probes[0].mpc: unknown key", "did you mean 'mcp'?"),
    ({"name": "p", "mcp": {"tool": "t"}, "expect": {"text_contain": "x"}}, "probes[0].expect.text_contain: unknown key",
     "did you mean 'text_contains'?"),
    ({"name": "p", "mcp": {"arguments": {}}}, "probes[0].mcp.tool: is required", ""),
    ({"name": "p", "mcp": {"tool": "t", "arguments": [1]}}, "probes[0].mcp.arguments: expected a mapping", ""),
    ({"name": "p", "mcp": {"tool": "t", "path": "mcp"}}, "probes[0].mcp.path: 'mcp' must start with /", ""),
    ({"name": "p", "mcp": {"tool": "t", "timeout_s": 0}}, "probes[0].mcp.timeout_s: expected a number of seconds", ""),
    ({"name": "p", "mcp": {"tool": "t"}, "expect": {"is_error": "no"}}, "probes[0].expect.is_error: expected true or false",
     ""),
    ({"name": "p", "mcp": {"tool": "t"}, "expect": {"status": 200}},
     "probes[0].expect.status: is about an HTTP response", "takes: text_contains, is_error, upstream"),
    ({"name": "p", "expect": {"text_contains": "x"}}, "probes[0].expect.text_contains: checks an MCP tool result",
     "mcp: {tool: NAME"),
    ({"name": "p", "request": {"path": "/"}, "mcp": {"tool": "t"}}, "probes[0]: give request or mcp, not both", ""),
])
def test_bad_mcp_probes_name_the_key(probe: dict[str, Any], where: str, hint: str) -> None:
    error = config_error(probe)
    assert error.message.startswith(f"hlocal.yaml: {where}"), error.message
    assert hint in error.hint


# -- evaluating a tool result --------------------------------------------------------------------

def result(text: str = "Hangzhou: sunny", is_error: bool = False) -> Any:
    return SimpleNamespace(text=text, is_error=is_error)


def test_a_matching_result_passes() -> None:
    expect = Expect(text_contains="sunny", is_error=False, upstream=UpstreamExpect(path="/weather"))
    assert evaluate_tool_result(expect, result(), {"method": "GET", "path": "/weather", "headers": {}}) == []
    assert evaluate_tool_result(Expect(), result(is_error=True), None) == []  # nothing expected, nothing checked


def test_each_difference_is_reported() -> None:
    expect = Expect(text_contains="rain", is_error=False, upstream=UpstreamExpect(path="/weather"))
    found = evaluate_tool_result(expect, result("x" * 300, is_error=True), None)
    assert [(m.what, m.expected) for m in found] == [
        ("tool isError", False), ("tool text", "contains 'rain'"),
        ("upstream", "the request to reach the backend")]
    assert found[1].actual == "x" * 200 + "…"


# -- the CLI -------------------------------------------------------------------------------------

def test_mcp_commands_need_a_running_stack(tmp_path: Path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: idle\n")
    runner = CliRunner()
    for argv in (["mcp", "tools"], ["mcp", "call", "get_weather", "city=x"]):
        done = runner.invoke(main, ["-f", str(tmp_path), *argv])
        assert done.exit_code == ExitCode.ENVIRONMENT, done.output
        assert "error: stack 'idle' is not running" in done.output


def test_bad_arguments_fail_before_looking_for_the_stack(tmp_path: Path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: idle\n")
    done = CliRunner().invoke(main, ["-f", str(tmp_path), "mcp", "call", "t", "city"])
    assert done.exit_code == ExitCode.USAGE
    assert "error: argument 'city': expected key=value or key:=json" in done.output
    bad_path = CliRunner().invoke(main, ["-f", str(tmp_path), "mcp", "tools", "--path", "mcp"])
    assert bad_path.exit_code == ExitCode.USAGE and "--path: 'mcp' must start with /" in bad_path.output


# -- the template ---------------------------------------------------------------------------------

def test_the_mcp_template_writes_a_project_whose_probes_parse(tmp_path: Path) -> None:
    done = newplugin.new_project(tmp_path, "weather", template="mcp")
    names = sorted(p.relative_to(tmp_path / "weather").as_posix() for p in done.written)
    assert names == [".github/workflows/test.yml", ".gitignore", "README.md", "go.mod", "hlocal.yaml", "main.go", "tests/test_mcp.py"]
    project = parse_project(yaml.safe_load((tmp_path / "weather" / "hlocal.yaml").read_text()),
                            tmp_path / "weather" / "hlocal.yaml")
    assert [p.mcp.tool for p in project.probes] == ["get_weather", "get_weather"]
    assert project.plugins[0].config["server"]["name"] == "weather"  # the name main.go registers
    assert 'mcp.AddMCPServer("weather"' in (tmp_path / "weather" / "main.go").read_text()
    assert "require github.com/higress-group/wasm-go v1.1.1" in (tmp_path / "weather" / "go.mod").read_text()
    assert "hlocal mcp call get_weather city=Hangzhou" in "\n".join(done.next_steps)


def test_every_mcp_template_is_used() -> None:
    from importlib import resources

    root = Path(str(resources.files("higress_local") / "templates" / "new-mcp"))
    assert {p.relative_to(root).as_posix() for p in root.rglob("*.tmpl")} == {t for t, _ in newplugin.MCP_FILES}


def test_an_unknown_template_is_refused(tmp_path: Path) -> None:
    done = CliRunner().invoke(main, ["new", "x", "--template", "nope", "--dir", str(tmp_path)])
    assert done.exit_code == ExitCode.USAGE and "'nope' is not one of 'plugin', 'mcp'" in done.output
