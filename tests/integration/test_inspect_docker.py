"""The request inspector on the docker runtime: the compose stack with local images, the collector on
this machine beside it (runtime/docker.py). The same stack as test_inspect.py's native one."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from support import wait_for
from test_inspect import (_captured, _run_inspect, _send, page_shows_a_curl_request_live_and_replays_it,
                          start_inspected)

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def inspected_docker(module_projects, transformer_wasm, sdk_plugin_wasm, docker_images):
    yield start_inspected(module_projects, transformer_wasm, sdk_plugin_wasm("inspectme"), "inspected-docker",
                          "docker")


def test_a_request_through_the_docker_gateway_shows_four_views_and_down_stops_the_collector(inspected_docker) -> None:
    project, state, collector = inspected_docker
    status = project.hlocal("status", "--json").json()
    states = {c["name"]: c["state"] for c in status["components"]}
    assert states["inspector"] == "running" and states["gateway-output"] == "running", states
    assert status["running"] is True
    output = project.state_dir / "logs" / "gateway-output.log"  # the container's output, copied for the collector
    assert output.stat().st_mode & 0o077 == 0, oct(output.stat().st_mode)  # plugin logs: the user's only

    assert _send(state, "GET", "/get/docker", {"host": "foo.bar.com", "x-remove": "exist", "x-not-renamed": "t"}) == 200
    record = _captured(project, "/get/docker")
    client, upstream = dict(record["client_request"]["headers"]), dict(record["upstream_request"]["headers"])
    assert client["x-remove"] == "exist" and "x-remove" not in upstream
    assert upstream["x-renamed"] == "t" and upstream["x-auth-status"] == "200"
    assert dict(record["client_response"]["headers"])["x-inspected"] == "yes"
    assert "x-inspected" not in dict(record["upstream_response"]["headers"])
    assert ["x-remove", "exist"] in record["diff"]["request_headers"]["removed"]
    # The backend's journal (its published control port), tied by request id
    assert record["received"]["where"] == "backend" and record["received"]["matched_by"] == "request id"
    assert record["received"]["entry"]["path"] == "/get/docker"
    # The container's output reached the collector: the access log (ai_log) and the plugin's own lines
    assert record["ai_log"] == {"inspected_path": "/get/docker"}
    mine = [line for line in record["plugin_logs"] if line["plugin"] == "inspectme"]
    assert mine and all(line["matched_by"] == "request id" for line in mine), record["plugin_logs"]
    assert [c["path"] for c in record["service_calls"]["auth"]] == ["/check/get/docker"]
    text = _run_inspect(project, str(record["id"])).output
    assert "1. request as the client sent it" in text and "- x-remove: exist" in text
    replayed = json.loads(_run_inspect(project, str(record["id"]), "--replay", "--json").output)
    assert replayed["status"] == 200 and replayed["id"] > record["id"]  # stored before --replay returned

    page_shows_a_curl_request_live_and_replays_it(project, state)  # `hlocal ui` in real chromium

    logs = project.hlocal("logs", "gateway-output", "--tail", "200")  # a process on this machine: its file
    assert logs.returncode == 0 and '"path":"/get/docker"' in logs.stdout, logs

    assert project.hlocal("down").returncode == 0
    _wait_stopped(collector, "`hlocal down`")
    assert project.leftovers() == []


def _wait_stopped(process: psutil.Process, by: str) -> None:
    def gone() -> bool:
        try:
            return process.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:  # exited and reaped by its supervisor
            return True

    wait_for(gone, timeout=10, what=f"the collector (pid {process.pid}) to stop with {by}")


def test_a_restart_replaces_the_collector_and_capture_goes_on(make_project, transformer_wasm, sdk_plugin_wasm,
                                                              docker_images) -> None:
    project, _, first = start_inspected(make_project, transformer_wasm, sdk_plugin_wasm("inspectme"),
                                        "inspected-restart", "docker")
    assert (restart := project.hlocal("reload", "--restart")).returncode == 0, restart
    _wait_stopped(first, "a restart")  # else two collectors would take turns on the one tap session
    from higress_local.config.project import load_project
    from higress_local.runtime import require_running

    state = require_running(load_project(project.path / "hlocal.yaml"))
    status_file = Path(state.components["inspector"].status_file or "")
    wait_for(lambda: status_file.is_file(), timeout=30, what="the new collector's supervisor to record its pid")
    assert json.loads(status_file.read_text())["pid"] != first.pid
    assert _send(state, "GET", "/get/after-restart", {"x-remove": "1"}) == 200
    record = _captured(project, "/get/after-restart")
    assert dict(record["client_request"]["headers"])["x-remove"] == "1"
    assert "x-remove" not in dict(record["upstream_request"]["headers"])
