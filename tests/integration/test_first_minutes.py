"""The first ten minutes and the daily loop (issue 11), through the real `hlocal` command line:
runtime auto, the project found from anywhere, next steps that work, logs, `ls`, `down --clean`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from support import HLOCAL, Result, wait_for

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def hl(cwd: Path, *args: str, env: dict | None = None, timeout: float = 180.0) -> Result:
    """`hlocal ARGS` run in `cwd`, without the -f the other tests always pass."""
    argv = [*HLOCAL, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})
    return Result(argv, done.returncode, done.stdout, done.stderr)


def logger_config(**extra) -> dict:
    """No `runtime:` key: auto decides."""
    return {"gateway": {"port": 0},
            "plugins": [{"name": "logger", "wasm": "l.wasm", "config": {"greeting": "${FM_GREETING:-hello}"}}],
            "probes": [{"name": "through", "request": {"path": "/probe"}, "expect": {"status": 200}}],
            **extra}


@pytest.fixture(scope="module")
def started(module_projects, plugin_wasm, tmp_path_factory):
    """One stack started from another folder with `up -f DIR`; the up's own output is kept."""
    project = module_projects(logger_config(), files={"l.wasm": plugin_wasm("logger")}, name="firstmin")
    (project.path / "tests").mkdir()
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    up = hl(elsewhere, "up", "-f", str(project.path), env={"FM_GREETING": "from-the-env"})
    assert up.returncode == 0, up
    return project, up, elsewhere


def test_auto_runs_the_embedded_runtime_and_says_so(started) -> None:
    # A Docker engine may well answer here: auto still picks the embedded Envoy for this plugin.
    project, up, _ = started
    assert "runtime auto: native, embedded Envoy" in up.stderr, up
    assert project.state()["runtime"] == "native"
    assert (project.state_dir / "last_runtime").read_text() == "native\n"


def test_up_prints_next_steps_that_work_from_where_the_user_stands(started) -> None:
    project, up, elsewhere = started
    try_line = next(line for line in up.stdout.splitlines() if line.startswith("try:"))
    flag = f"-f {os.path.relpath(project.path, elsewhere)}"
    assert f"hlocal {flag} probe" in try_line and f"hlocal {flag} down" in try_line, try_line
    probe = hl(elsewhere, *f"{flag} probe".split())  # exactly what it said, from where it was said
    assert probe.returncode == 0 and "1 passed" in probe.stdout, probe


def test_the_project_is_found_from_a_subfolder_and_f_goes_after_the_subcommand(started) -> None:
    project, _, elsewhere = started
    for args in (("status",), ("probe",), ("logs", "gateway", "--tail", "1")):
        result = hl(project.path / "tests", *args)
        assert result.returncode == 0 and result.stdout, result
    assert hl(elsewhere, "probe", "-f", str(project.path)).returncode == 0
    assert hl(elsewhere, "status", "-f", str(project.path), "--json").json()["running"] is True


def test_variables_from_the_environment_reach_the_plugin(started) -> None:
    project, _, _ = started
    logged = hl(project.path, "logs", "--plugin").stdout
    assert 'logger: logger: configured {"greeting":"from-the-env"}' in logged, logged


def test_logs_are_merged_in_time_order_with_since_timestamps_and_short_plugin_lines(started) -> None:
    project, _, _ = started
    assert hl(project.path, "request", "GET", "/merged").returncode == 0
    plugin = hl(project.path, "logs", "--plugin").stdout.splitlines()
    assert "logger: logger: GET /merged" in plugin
    assert all(line.startswith("logger: ") for line in plugin), plugin  # no Envoy prefix, no repeats
    stamped = hl(project.path, "logs", "-t", "--no-prefix").stdout.splitlines()
    times = [line.split(" ", 1)[0] for line in stamped if line[:1].isdigit()]
    assert len(times) > 5 and times == sorted(times), stamped
    assert not any(line.startswith(("gateway |", "backend |")) for line in stamped)
    prefixed = hl(project.path, "logs").stdout.splitlines()
    assert {line.split("|", 1)[0].strip() for line in prefixed} >= {"gateway", "backend"}
    future = hl(project.path, "logs", "--since", "2100-01-01T00:00:00Z")
    assert future.returncode == 0 and future.stdout == ""
    recent = hl(project.path, "logs", "--plugin", "--since", "10m").stdout
    assert "GET /merged" in recent
    bad = hl(project.path, "logs", "--since", "yesterday")
    assert bad.returncode == 2 and "--since 'yesterday'" in bad.stderr


def test_the_access_log_is_reachable(started) -> None:
    project, _, _ = started
    assert hl(project.path, "request", "GET", "/accessed").returncode == 0
    access = wait_for(lambda: "/accessed" in (out := hl(project.path, "logs", "access").stdout) and out,
                      timeout=10, what="the request in the access log")
    assert all("/accessed" in line or line for line in access.splitlines())


def test_render_works_while_the_stack_runs(started, tmp_path) -> None:
    project, _, _ = started
    result = hl(project.path, "render", "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result
    assert (tmp_path / "out").is_dir()


def test_ls_lists_two_stacks_from_two_folders_and_status_reflects_health(started, make_project, plugin_wasm,
                                                                        tmp_path) -> None:
    first, _, _ = started
    second = make_project(logger_config(), files={"l.wasm": plugin_wasm("logger")}, name="firstmin-b")
    assert second.hlocal("up").returncode == 0
    listed = {entry["name"]: entry for entry in hl(tmp_path, "ls", "--json").json()}
    for project in (first, second):
        entry = listed[project.name]
        assert entry["folder"] == str(project.path) and entry["runtime"] == "native"
        assert entry["health"] == "healthy" and entry["url"].startswith("http://127.0.0.1:")
        assert entry["uptime_seconds"] >= 0
    table = hl(tmp_path, "ls").stdout
    assert first.name in table and second.name in table
    # `status` exits 1 when a component died (scripts can say `hlocal status && ...`)
    backend = second.state()["components"]["backend"]["pid"]
    os.kill(backend, signal.SIGKILL)
    wait_for(lambda: second.hlocal("status").returncode == 1, timeout=10, what="status to see the dead backend")
    degraded = second.hlocal("status")
    assert "degraded" in degraded.stdout + degraded.stderr
    assert {e["name"]: e for e in hl(tmp_path, "ls", "--json").json()}[second.name]["health"] == "degraded"


def test_down_clean_removes_the_stack_folder(make_project, plugin_wasm) -> None:
    project = make_project(logger_config(), files={"l.wasm": plugin_wasm("logger")}, name="firstmin-clean")
    assert project.hlocal("up").returncode == 0
    assert project.state_dir.is_dir()
    down = project.hlocal("down", "--clean")
    assert down.returncode == 0 and f"removed {project.state_dir}" in down.stdout, down
    assert not project.state_dir.exists()
    assert project.leftovers() == []


def test_after_a_failed_up_the_follow_up_commands_read_the_runtime_that_ran(make_project, plugin_wasm) -> None:
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "h", "wasm": "h.wasm", "config": {"reject": True}}]},
                           files={"h.wasm": plugin_wasm("headers")}, name="firstmin-failed")
    up = project.hlocal("up")
    assert up.returncode == 4, up
    assert project.state() is None  # the failed up removed its state, but not its record
    # Even when hlocal.yaml now says docker, logs and status read the native stack that failed.
    project.config["runtime"] = "docker"
    project.write()
    logs = project.hlocal("logs", "gateway")
    assert logs.returncode == 0 and "[info][main]" in logs.stdout, logs
    logged = (project.state_dir / "logs" / "gateway.log").read_text()
    assert len(logs.stdout.splitlines()) == len(logged.splitlines())
    assert 'h: headers: invalid configuration: "reject" is true' in logs.stdout.splitlines()
    status = project.hlocal("status", "--json")
    assert status.returncode == 1 and status.json()["runtime"] == "native", status


def test_shell_completion_from_the_installed_command(tmp_path) -> None:
    script = subprocess.run([str(BIN / "hlocal")], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "_HLOCAL_COMPLETE": "bash_source"})
    assert script.returncode == 0 and "complete -o nosort -F _hlocal_completion hlocal" in script.stdout
    words = subprocess.run([str(BIN / "hlocal")], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                           env={**os.environ, "_HLOCAL_COMPLETE": "bash_complete", "COMP_WORDS": "hlocal lo",
                                "COMP_CWORD": "1"})
    assert "plain,logs" in words.stdout.split() and "plain,ls" not in words.stdout.split()


def test_name_and_port_overrides_run_a_second_stack_of_one_project(started, tmp_path) -> None:
    project, _, _ = started
    other = hl(project.path, "up", "--name", "firstmin-other", "--port", "0")
    assert other.returncode == 0, other
    try:
        assert "hlocal --name firstmin-other probe" in other.stdout, other.stdout
        listed = {e["name"]: e for e in hl(tmp_path, "ls", "--json").json()}
        assert listed["firstmin-other"]["folder"] == listed[project.name]["folder"] == str(project.path)
        assert listed["firstmin-other"]["url"] != listed[project.name]["url"]
        assert hl(project.path, "status", "--name", "firstmin-other").returncode == 0
        assert (project.path / ".hlocal" / "firstmin-other" / "state.json").exists()
    finally:
        down = hl(project.path, "down", "--name", "firstmin-other", "--clean")
    assert down.returncode == 0, down
    assert hl(project.path, "status").returncode == 0  # the project's own stack is untouched


@pytest.mark.docker
def test_docker_logs_are_merged_and_the_access_log_is_read_from_the_gateway_output(make_project, plugin_wasm,
                                                                                  docker_images, tmp_path) -> None:
    project = make_project(logger_config(), files={"l.wasm": plugin_wasm("logger")}, name="firstmin-docker",
                           runtime="docker")
    assert (up := project.hlocal("up")).returncode == 0, up
    assert project.hlocal("request", "GET", "/dockered").returncode == 0
    plugin = project.hlocal("logs", "--plugin").stdout.splitlines()
    assert "logger: logger: GET /dockered" in plugin, plugin
    stamped = project.hlocal("logs", "-t").stdout.splitlines()
    times = [line.split("| ", 1)[1].split(" ", 1)[0] for line in stamped if "| " in line]
    assert len(times) > 5 and times == sorted(times), stamped
    assert {line.split("|", 1)[0].strip() for line in stamped} >= {"gateway", "backend"}
    access = wait_for(lambda: "/dockered" in (out := project.hlocal("logs", "access").stdout) and out,
                      timeout=15, what="the request among the gateway's JSON access entries")
    assert all(line.startswith("{") for line in access.splitlines()), access
    entry = {e["name"]: e for e in hl(tmp_path, "ls", "--json").json()}[project.name]
    assert entry["runtime"] == "docker" and entry["folder"] == str(project.path)
