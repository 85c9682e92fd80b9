"""`up` on a running stack converges (a reload where it can, a restart where it must, and says which), a
`port: 0` gateway keeps its port across restarts, one reload agent per stack, and the friction points
around them (issue 18), on a real native stack."""

from __future__ import annotations

import socket
import textwrap
import urllib.request

import pytest

from support import Project, wait_for

from higress_local.agent.control import ping
from higress_local.system.orphans import AGENT_MARKER, find_marked
from higress_local.system.ports import free_port

pytestmark = pytest.mark.slow


def _config(version: str) -> dict:
    return {"response_headers": {"x-version": version}}


@pytest.fixture
def stack(make_project, plugin_wasm) -> Project:
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "headers", "wasm": "headers.wasm", "config": _config("1")}]},
                           files={"headers.wasm": plugin_wasm("headers")}, name="converge", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def _version(port: int) -> str | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/get", timeout=10) as response:
        return response.headers.get("x-version")


def _gateway_pid(project: Project) -> int:
    return project.state()["components"]["gateway"]["pid"]


def _one_agent(project: Project) -> list[int]:
    """The pids of the stack's agents, once the one `up`/`reload` started answers."""
    answering = wait_for(lambda: ping(project.state_dir), 60, "the stack's reload agent to answer")
    agents = [p.pid for p in find_marked(project.state_dir, AGENT_MARKER)]
    assert agents == [answering], agents
    return agents


def test_up_applies_a_config_edit_by_reload_then_says_nothing_changed(stack: Project) -> None:
    gateway = _gateway_pid(stack)
    stack.config["plugins"][0]["config"] = _config("2")
    stack.write()
    applied = stack.hlocal("up")
    assert applied.returncode == 0, applied
    assert f"{stack.name} is already running (native); applied by reload:" in applied.stdout, applied
    assert "  plugin headers: config changed, live in " in applied.stdout, applied
    assert "restarted" not in applied.stdout and "nothing changed" not in applied.stdout
    assert _gateway_pid(stack) == gateway  # in place: the same Envoy
    assert _version(stack.state()["gateway_port"]) == "2"
    again = stack.hlocal("up")
    assert again.returncode == 0, again
    assert "already running (native); nothing changed" in again.stdout, again
    assert "applied" not in again.stdout


def test_up_with_another_port_restarts_and_says_so(stack: Project) -> None:
    before = stack.state()["gateway_port"]
    wanted = free_port()
    moved = stack.hlocal("up", "--port", str(wanted))
    assert moved.returncode == 0, moved
    assert f"restarted the gateway: port {before} → {wanted}" in moved.stdout, moved
    assert stack.state()["gateway_port"] == wanted
    assert _version(wanted) == "1"
    _one_agent(stack)
    # The same command line again: nothing to do.
    same = stack.hlocal("up", "--port", str(wanted))
    assert same.returncode == 0 and "nothing changed" in same.stdout, same


def test_up_restarts_for_a_chain_change_and_keeps_a_port_0_gateway_s_port(stack: Project, plugin_wasm) -> None:
    port = stack.state()["gateway_port"]
    (stack.path / "logger.wasm").write_bytes(plugin_wasm("logger").read_bytes())
    stack.config["plugins"].append({"name": "logger", "wasm": "logger.wasm", "config": {}})
    stack.write()
    result = stack.hlocal("up")
    assert result.returncode == 0, result
    assert "restarted the gateway: the plugin chain changed" in result.stdout, result
    assert stack.state()["gateway_port"] == port
    assert [p["name"] for p in stack.state()["plugins"]] == ["headers", "logger"]
    # It was started from `port: 0`: that is what the next `up` compares with, so nothing changed.
    again = stack.hlocal("up")
    assert again.returncode == 0 and "nothing changed" in again.stdout, again


def test_up_restarts_for_a_new_service_and_starts_it(stack: Project) -> None:
    stack.config["services"] = [{"name": "alt", "kind": "fqdn", "host": "alt.internal", "port": 8080}]
    stack.write()
    result = stack.hlocal("up")
    assert result.returncode == 0, result
    assert "restarted the gateway: services changed" in result.stdout, result
    assert "svc-alt" in stack.state()["components"]


def test_reload_restart_keeps_the_port_and_leaves_exactly_one_agent(stack: Project) -> None:
    port = stack.state()["gateway_port"]
    first = _one_agent(stack)
    restarted = stack.hlocal("reload", "--restart")
    assert restarted.returncode == 0, restarted
    assert "moved" not in restarted.stdout, restarted
    assert stack.state()["gateway_port"] == port
    assert _version(port) == "1"
    assert _one_agent(stack) != first  # the old agent left with the old stack; the new one serves alone


def test_reload_restart_says_when_the_port_was_taken_meanwhile(stack: Project) -> None:
    port = stack.state()["gateway_port"]
    # Envoy listens with SO_REUSEPORT, so a socket of ours can share the port now and keep it after.
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        restarted = stack.hlocal("reload", "--restart")
        assert restarted.returncode == 0, restarted
        new_port = stack.state()["gateway_port"]
        assert new_port != port
        assert f"port {port} is in use now; the gateway moved to port {new_port}" in restarted.stdout, restarted
        assert _version(new_port) == "1"
    finally:
        squatter.close()


def test_the_port_in_use_hint_names_the_option_that_set_it(make_project, plugin_wasm) -> None:
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "headers", "wasm": "headers.wasm", "config": _config("1")}]},
                           files={"headers.wasm": plugin_wasm("headers")}, name="taken", runtime="native")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        taken = holder.getsockname()[1]
        result = project.hlocal("up", "--port", str(taken))
    assert result.returncode == 3, result
    assert f"port {taken} (gateway listener, --port) is in use" in result.stderr, result
    assert "hint: pass another --port" in result.stderr and "hlocal.yaml" not in result.stderr, result


def test_hlocal_test_says_already_running_once(stack: Project) -> None:
    tests = stack.path / "tests"
    tests.mkdir()
    (tests / "test_smoke.py").write_text(textwrap.dedent("""
        def test_the_gateway_answers(gateway):
            assert gateway.get("/get").headers["x-version"] == "1"
    """))
    result = stack.hlocal("test", timeout=300)
    assert result.returncode == 0, result
    assert "1 passed" in result.stdout, result
    assert result.output.count("already running") == 1, result
