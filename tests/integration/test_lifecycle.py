"""up/down/status across shells, on both runtimes: twice in a row, after failures, Ctrl-C and crashes."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from support import HLOCAL, Project, processes_mentioning, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def logger_project(make_project, plugin_wasm, runtime):
    def make(**extra) -> Project:
        config = {"gateway": {"port": 0}, "plugins": [{"name": "logger", "wasm": "l.wasm", "config": {}}], **extra}
        return make_project(config, files={"l.wasm": plugin_wasm("logger")}, name="life", runtime=runtime)

    return make


def _nothing_left(project: Project) -> None:
    assert project.leftovers() == []
    assert project.state() is None


def _gateway_started(project: Project) -> bool:
    return "gateway" in ((project.state() or {}).get("components") or {})


def test_down_twice_after_up(logger_project, runtime) -> None:
    project = logger_project()
    assert (up := project.hlocal("up")).returncode == 0, up
    # native: two supervisors, envoy, mock; docker: two containers and a network
    assert len(project.leftovers()) >= (4 if runtime == "native" else 3)
    first = project.hlocal("down")
    assert first.returncode == 0 and "stopped" in first.stdout, first
    _nothing_left(project)
    second = project.hlocal("down")
    assert second.returncode == 0 and "nothing running" in second.stdout, second


def test_down_after_failed_up(make_project, plugin_wasm, runtime) -> None:
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "h", "wasm": "h.wasm", "config": {"reject": True}}]},
                           files={"h.wasm": plugin_wasm("headers")}, name="failed", runtime=runtime)
    assert project.hlocal("up").returncode == 4
    _nothing_left(project)
    result = project.hlocal("down")
    assert result.returncode == 0, result
    _nothing_left(project)


def test_ctrl_c_during_up_leaves_nothing(logger_project) -> None:
    project = logger_project()
    proc = subprocess.Popen([*HLOCAL, "-f", str(project.path), "up"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # Interrupt once the gateway has been started, i.e. while `up` waits for ready.
        wait_for(lambda: _gateway_started(project), 120, "the gateway to start")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    _nothing_left(project)
    assert project.hlocal("down").returncode == 0


def test_crash_of_hlocal_then_down_from_a_new_shell(logger_project) -> None:
    project = logger_project()
    proc = subprocess.Popen([*HLOCAL, "-f", str(project.path), "up"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: _gateway_started(project), 120, "the gateway to start")
    proc.kill()  # SIGKILL: no cleanup code runs
    proc.wait(timeout=30)
    assert project.leftovers(), "the stack should still be running after hlocal itself died"
    status = project.hlocal("status", "--json")
    assert status.returncode == 0, status
    # The inspector's collector starts just after the gateway: listed when it was started in time.
    assert {c["name"] for c in status.json()["components"]} - {"inspector"} == {"backend", "gateway"}
    result = project.hlocal("down")
    assert result.returncode == 0, result
    _nothing_left(project)


def _kill_gateway(project: Project, runtime: str) -> None:
    gateway = next(c for c in project.hlocal("status", "--json").json()["components"] if c["name"] == "gateway")
    if runtime == "native":
        assert "envoy" in open(f"/proc/{gateway['pid']}/cmdline").read()
        os.kill(gateway["pid"], signal.SIGKILL)
    else:
        subprocess.run(["docker", "kill", f"hlocal-{project.name}-gateway-1"], check=True, capture_output=True)


def test_killed_gateway_shows_exited_and_up_brings_it_back(logger_project, runtime) -> None:
    project = logger_project()
    assert project.hlocal("up").returncode == 0
    _kill_gateway(project, runtime)

    def gateway_state():
        doc = project.hlocal("status", "--json").json()
        return next(c for c in doc["components"] if c["name"] == "gateway") if not doc["running"] else None

    gateway = wait_for(gateway_state, 30, "status to show the gateway as not running")
    assert gateway["state"] == "exited"
    if runtime == "native":
        assert "SIGKILL" in gateway["detail"]
    else:
        assert gateway["exit_code"] == 137
    assert project.hlocal("request", "GET", "/").returncode == 3
    again = project.hlocal("up")
    assert again.returncode == 0 and "is up" in again.stdout, again
    assert project.hlocal("status", "--json").json()["running"] is True


def test_status_when_nothing_runs(logger_project) -> None:
    project = logger_project()
    result = project.hlocal("status")
    assert result.returncode == 1 and "not running" in result.stdout and "hlocal up" in result.stderr
    assert project.hlocal("status", "--json").json()["running"] is False


def test_recreate_restarts(logger_project, runtime) -> None:
    project = logger_project()
    assert project.hlocal("up").returncode == 0
    before = {c["name"]: c["pid"] for c in project.hlocal("status", "--json").json()["components"]}
    again = project.hlocal("up", "--recreate")
    assert again.returncode == 0 and "is up" in again.stdout, again
    after = {c["name"]: c["pid"] for c in project.hlocal("status", "--json").json()["components"]}
    assert after["gateway"] != before["gateway"]
    if runtime == "native":
        assert not [p for p, _ in processes_mentioning(str(project.path)) if p == before["gateway"]]


def test_status_logs_and_down_read_the_state_once(logger_project, monkeypatch) -> None:
    """Each goes through the Stack handle, which reads state.json once and hands it to the runtime."""
    from click.testing import CliRunner

    from support import count_state_reads

    from higress_local.cli.main import main

    project = logger_project()
    assert (up := project.hlocal("up")).returncode == 0, up
    reads = count_state_reads(monkeypatch)
    for args, said in ((["status"], "gateway"), (["logs", "access", "--tail", "1"], ""), (["down"], "stopped")):
        reads.clear()
        result = CliRunner().invoke(main, ["-f", str(project.path), *args], catch_exceptions=False)
        assert result.exit_code == 0 and said in result.output, (args, result.output)
        assert reads == [project.state_dir / "state.json"], (args, reads)
    _nothing_left(project)
