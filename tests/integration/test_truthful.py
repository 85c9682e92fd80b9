"""hlocal's reports tell what really happened (issue 13), checked on a misbehaving plugin of our own.

tests/sdk_plugins/truthful picks a misbehaviour per route: replace every header (dropping hlocal's
request id), a BadArgument that has nothing to do with a cluster, a hang after a failed call, and a
critical line while configuring. One native stack serves the whole module.
"""

from __future__ import annotations

import pytest

from support import Project

pytestmark = pytest.mark.slow

MODES = ("replace_all", "bad_replace", "hang")


@pytest.fixture(scope="module")
def truthful(module_projects, sdk_plugin_wasm) -> Project:
    project = module_projects(
        {"gateway": {"port": 0},
         "plugins": [{"name": "truthful", "wasm": "truthful.wasm", "config": {"mode": "none", "complain_at_start": True},
                      "rules": [{"match_route": [mode.replace("_", "-")], "config": {"mode": mode}} for mode in MODES]}],
         "routes": [*({"name": mode.replace("_", "-"), "prefix": f"/{mode}"} for mode in MODES),
                    {"name": "to-users", "prefix": "/users", "service": "users"},
                    {"name": "default", "prefix": "/"}],
         "services": [{"name": "users", "kind": "fqdn", "host": "users.internal", "port": 8080}],
         "probes": [{"name": "users-got-it", "request": {"path": "/users/7", "headers": {"x-who": "me"}},
                     "expect": {"status": 200, "services": {"users": {"path": "/users/7", "headers": {"x-who": "me"}}}}},
                    {"name": "users-wrong", "request": {"path": "/users/8"},
                     "expect": {"services": {"users": {"headers": {"x-who": "someone"}}}}}]},
        files={"truthful.wasm": sdk_plugin_wasm("truthful")}, name="truthful", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def _stack(project: Project):
    from higress_local.config.project import load_project
    from higress_local.runtime import require_running

    loaded = load_project(project.path / "hlocal.yaml")
    return loaded, require_running(loaded)


def test_a_request_to_a_service_route_is_found_in_the_services_journal(truthful: Project) -> None:
    result = truthful.hlocal("request", "GET", "/users/1", "--json")
    assert result.returncode == 0, result
    doc = result.json()
    assert doc["upstream"] is None  # the backend's entry: the backend never saw it
    assert doc["received"]["path"] == "/users/1"
    assert doc["received_by"] == "users" and doc["matched_by"] == "request id"
    assert any("went to service users" in note for note in doc["notes"])


def test_dropped_request_id_is_matched_by_time_and_path(truthful: Project) -> None:
    result = truthful.hlocal("request", "GET", "/replace_all/x?q=1", "--json")
    assert result.returncode == 0, result
    doc = result.json()
    assert doc["upstream"] is not None, doc
    assert doc["upstream"]["headers"]["x-replaced"] == ["all"]
    assert "x-hlocal-request-id" not in doc["upstream"]["headers"]
    assert doc["received_by"] == "backend"
    assert "matched by time" in doc["matched_by"] and "same method and path" in doc["matched_by"]


def test_a_bad_argument_that_is_no_call_blames_no_cluster(truthful: Project) -> None:
    doc = truthful.hlocal("request", "GET", "/bad_replace", "--json").json()
    assert any("replace response headers failed" in line for line in doc["plugin_logs"]), doc["plugin_logs"]
    assert doc["notes"], doc
    assert not any("cluster does not exist" in n or "which does not exist" in n for n in doc["notes"]), doc["notes"]
    assert any("not about a missing cluster" in n for n in doc["notes"])


def test_a_hang_after_a_failed_call_is_diagnosed(truthful: Project) -> None:
    from higress_local.errors import WaitTimeout
    from higress_local.probe.send import send_request

    project, state = _stack(truthful)
    with pytest.raises(WaitTimeout) as caught:
        send_request(state, "GET", "/hang", timeout=2.0, observe=project)
    message = str(caught.value)
    assert "accepted GET /hang but no response came within 2 s" in message
    assert "failed to call nowhere cluster" in message  # the plugin's last lines
    assert "is the stack up" not in message
    assert "BadArgument" in message and "cluster does not exist" in message  # this one is a call
    assert "resume" in caught.value.hint


def test_probes_expect_what_a_service_received(truthful: Project) -> None:
    result = truthful.hlocal("probe", "--json")
    doc = result.json()
    verdict = {p["name"]: p for p in doc["probes"]}
    assert verdict["users-got-it"]["passed"], verdict["users-got-it"]
    assert not verdict["users-wrong"]["passed"]
    assert verdict["users-wrong"]["mismatches"][0]["what"] == "service users header x-who"
    assert result.returncode != 0


def test_a_critical_line_at_start_is_a_startup_warning(truthful: Project) -> None:
    from higress_local.probe.observe import startup_warnings

    log = (truthful.state_dir / "logs" / "gateway.log").read_text().splitlines()
    warnings = startup_warnings(log)
    assert any(w.startswith("critical: ") and "configuration rejected" in w for w in warnings), warnings
    assert not any("truthful: none on" in w for w in warnings)  # info lines are not warnings
    from higress_local.probe.observe import startup_warnings_of

    project, _ = _stack(truthful)
    assert any("configuration rejected" in w for w in startup_warnings_of(project))
