"""up/down/status across shells: twice in a row, after failures, after Ctrl-C and after a crash."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from support import HLOCAL, Project, processes_mentioning, wait_for

pytestmark = pytest.mark.slow


def _logger_project(make_project, plugin_wasm, **extra) -> Project:
    config = {"gateway": {"port": 0}, "plugins": [{"name": "logger", "wasm": "l.wasm", "config": {}}], **extra}
    return make_project(config, files={"l.wasm": plugin_wasm("logger")}, name="life")


def _no_envoy_or_mock(project: Project) -> None:
    assert project.leftovers() == []
    assert project.state() is None


def test_down_twice_after_up(make_project, plugin_wasm) -> None:
    project = _logger_project(make_project, plugin_wasm)
    assert (up := project.hlocal("up")).returncode == 0, up
    assert len(project.leftovers()) >= 4  # two supervisors, envoy, mock
    first = project.hlocal("down")
    assert first.returncode == 0 and "stopped" in first.stdout, first
    _no_envoy_or_mock(project)
    second = project.hlocal("down")
    assert second.returncode == 0 and "nothing running" in second.stdout, second


def test_down_after_failed_up(make_project, plugin_wasm) -> None:
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "h", "wasm": "h.wasm", "config": {"reject": True}}]},
                           files={"h.wasm": plugin_wasm("headers")}, name="failed")
    assert project.hlocal("up").returncode == 4
    result = project.hlocal("down")
    assert result.returncode == 0, result
    _no_envoy_or_mock(project)


def test_ctrl_c_during_up_leaves_nothing(make_project, plugin_wasm) -> None:
    project = _logger_project(make_project, plugin_wasm)
    proc = subprocess.Popen([*HLOCAL, "-f", str(project.path), "up"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # Interrupt once the gateway process has been started, i.e. while `up` waits for ready.
        wait_for(lambda: "gateway" in ((project.state() or {}).get("components") or {}), 60, "the gateway to start")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    _no_envoy_or_mock(project)
    assert project.hlocal("down").returncode == 0


def test_crash_of_hlocal_then_down_from_a_new_shell(make_project, plugin_wasm) -> None:
    project = _logger_project(make_project, plugin_wasm)
    proc = subprocess.Popen([*HLOCAL, "-f", str(project.path), "up"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: "gateway" in ((project.state() or {}).get("components") or {}), 60, "the gateway to start")
    proc.kill()  # SIGKILL: no cleanup code runs
    proc.wait(timeout=30)
    assert project.leftovers(), "the stack should still be running after hlocal itself died"
    status = project.hlocal("status", "--json")
    assert status.returncode == 0, status
    assert {c["name"] for c in status.json()["components"]} == {"backend", "gateway"}
    result = project.hlocal("down")
    assert result.returncode == 0, result
    _no_envoy_or_mock(project)


def test_killed_gateway_shows_exited_and_up_brings_it_back(make_project, plugin_wasm) -> None:
    project = _logger_project(make_project, plugin_wasm)
    assert project.hlocal("up").returncode == 0
    envoy_pid = project.hlocal("status", "--json").json()["components"][1]["pid"]
    assert "envoy" in (open(f"/proc/{envoy_pid}/cmdline").read())
    os.kill(envoy_pid, signal.SIGKILL)

    def gateway_state():
        doc = project.hlocal("status", "--json").json()
        return next(c for c in doc["components"] if c["name"] == "gateway") if not doc["running"] else None

    gateway = wait_for(gateway_state, 30, "status to show the gateway as not running")
    assert gateway["state"] == "exited"
    assert "SIGKILL" in gateway["detail"]
    assert project.hlocal("request", "GET", "/").returncode == 3
    again = project.hlocal("up")
    assert again.returncode == 0 and "is up" in again.stdout, again
    assert project.hlocal("status", "--json").json()["running"] is True


def test_status_when_nothing_runs(make_project, plugin_wasm) -> None:
    project = _logger_project(make_project, plugin_wasm)
    result = project.hlocal("status")
    assert result.returncode == 0 and "not running" in result.stdout
    assert project.hlocal("status", "--json").json()["running"] is False


def test_recreate_restarts(make_project, plugin_wasm) -> None:
    project = _logger_project(make_project, plugin_wasm)
    assert project.hlocal("up").returncode == 0
    first = project.state()["components"]["gateway"]["pid"]
    again = project.hlocal("up", "--recreate")
    assert again.returncode == 0, again
    assert project.state()["components"]["gateway"]["pid"] != first
    assert not [p for p, cmd in processes_mentioning(str(project.path)) if p == first]
