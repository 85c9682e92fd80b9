"""The reload agent on a real stack: it serves `hlocal reload` with the CLI's output and exit code,
declines what it cannot do the same way, forwards a stop signal, and leaves with the stack."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from support import (HLOCAL, Project, count_state_reads, processes_mentioning, reload_stopped_by_sigterm,
                     wait_for, wait_until_serving_the_recorded_version)

from higress_local.agent.control import ping
from higress_local.system.orphans import AGENT_MARKER, find_marked

pytestmark = pytest.mark.slow


def _config(version: str) -> dict:
    return {"response_headers": {"x-version": version}}


def _up(make_project, plugin_wasm, runtime: str) -> Project:
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "headers", "wasm": "headers.wasm", "config": _config("1")}]},
                           files={"headers.wasm": plugin_wasm("headers")}, name="agent", runtime=runtime)
    up = project.hlocal("up")
    assert up.returncode == 0, up
    wait_for(lambda: ping(project.state_dir), 60, "the reload agent started by `up` to answer")
    return project


@pytest.fixture
def stack(make_project, plugin_wasm) -> Project:
    return _up(make_project, plugin_wasm, "native")


@pytest.fixture
def stack_on_each_runtime(make_project, plugin_wasm, runtime) -> Project:
    return _up(make_project, plugin_wasm, runtime)


def _served(project: Project) -> list[str]:
    return [line for line in (project.state_dir / "logs" / "agent.log").read_text().splitlines()
            if "reload served" in line or "declined" in line]


def _version(project: Project) -> str | None:
    port = project.state()["gateway_port"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/get", timeout=10) as response:
        return response.headers.get("x-version")


def _set(project: Project, version: str) -> None:
    project.config["plugins"][0]["config"] = _config(version)
    project.write()


def test_the_agent_serves_a_config_reload_from_a_subfolder_with_the_cli_s_output(stack_on_each_runtime: Project) -> None:
    stack = stack_on_each_runtime
    (stack.path / "tests").mkdir()
    _set(stack, "2")
    done = subprocess.run([*HLOCAL, "reload"], cwd=stack.path / "tests", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("plugin headers: config changed, live in "), done.stdout
    assert done.stderr == ""
    assert _served(stack)[-1].endswith("(exit 0)") and "reload served" in _served(stack)[-1]
    assert _version(stack) == "2"
    # Nothing changed: the same words as the CLI's.
    again = stack.hlocal("reload")
    assert (again.returncode, again.stdout) == (0, "nothing changed\n")
    assert len([line for line in _served(stack) if "reload served" in line]) == 2


@pytest.mark.parametrize("args", [("reload", "nosuch"), ("reload", "--name", "Bad Name")])
def test_errors_from_the_agent_read_as_the_cli_s(stack: Project, args: tuple[str, ...]) -> None:
    through_agent = stack.hlocal(*args)
    without = stack.hlocal(*args, env={"HLOCAL_NO_AGENT": "1"})
    assert through_agent.returncode == without.returncode == 2
    assert (through_agent.stdout, through_agent.stderr) == (without.stdout, without.stderr)
    assert through_agent.stderr.startswith("error: ") and "\nhint: " in through_agent.stderr


def test_what_needs_a_restart_or_other_settings_goes_to_the_cli(stack: Project, plugin_wasm) -> None:
    served = len(_served(stack))
    # Another HLOCAL_* setting than the agent's: the CLI reloads, with that setting.
    _set(stack, "3")
    other = stack.hlocal("reload", env={"HLOCAL_CACHE_DIR": str(stack.path / "cache")})
    assert other.returncode == 0 and "config changed" in other.stdout, other
    assert "other HLOCAL_*/DOCKER_* settings" in _served(stack)[served]
    # A second plugin changes the chain: only a restart can do that; the CLI's error and hint.
    (stack.path / "two.wasm").write_bytes(plugin_wasm("headers").read_bytes())
    stack.config["plugins"].append({"name": "two", "wasm": "two.wasm", "config": _config("x")})
    stack.write()
    refused = stack.hlocal("reload")
    assert refused.returncode == 2 and "cannot be swapped in place" in refused.stderr, refused
    assert "needs a restart" in _served(stack)[-1]
    assert _version(stack) == "3"


def test_a_signal_forwarded_to_the_agent_rolls_the_swap_back(stack: Project, transformer_wasm) -> None:
    from higress_local.wasm.module import add_custom_section

    # A 6 MB module Envoy compiles for seconds: time to stop the reload half-way.
    stack.config["plugins"][0].update(wasm="t.wasm", config={"reqRules": []})
    stack.write()
    (stack.path / "t.wasm").write_bytes(transformer_wasm.read_bytes())
    assert stack.hlocal("reload", "--restart").returncode == 0
    wait_for(lambda: ping(stack.state_dir), 60, "the agent after the restart")
    (stack.path / "t.wasm").write_bytes(add_custom_section(transformer_wasm.read_bytes(), "hlocal-test", b"2"))
    code, stderr, before = reload_stopped_by_sigterm(stack, "headers")
    assert code == 143 and stderr == "stopped by SIGTERM\n", stderr
    assert _served(stack)[-1].endswith("(exit 143)")
    assert (stack.state_dir / "ecds" / "headers.json").read_text() == before
    wait_until_serving_the_recorded_version(stack, "headers")
    assert ping(stack.state_dir), "the agent goes on serving after a forwarded signal"


def test_a_reload_served_by_the_agent_reads_the_state_once(stack: Project, monkeypatch) -> None:
    from higress_local.runtime.agent import Agent

    _set(stack, "2")
    reads = count_state_reads(monkeypatch)
    # The agent's own reload, in this process so its reads can be counted.
    answer = Agent(stack.state_dir)._run_reload({
        "file": str(stack.path / "hlocal.yaml"), "cwd": str(stack.path), "name": None, "env": dict(os.environ),
        "plugins": [], "build": True, "timeout": 60.0})
    assert answer["exit"] == 0, answer
    assert any(line.startswith("plugin headers: config changed") for line in answer["out"]), answer
    assert len(reads) == 1, f"{len(reads)} reads of state.json"
    assert reads[0] == stack.state_dir / "state.json"
    assert _version(stack) == "2"


def test_down_stops_the_agent_and_a_stale_socket_is_not_followed(stack: Project) -> None:
    pid = ping(stack.state_dir)
    assert [p.pid for p in find_marked(stack.state_dir, AGENT_MARKER)] == [pid]
    down = stack.hlocal("down")
    assert down.returncode == 0, down
    assert find_marked(stack.state_dir, AGENT_MARKER) == [] and not processes_mentioning(str(stack.state_dir))
    assert not (stack.state_dir / "run" / "agent.sock").exists()
    # Nothing answers now: reload is the CLI's, and says the stack is not running.
    reloaded = stack.hlocal("reload")
    assert reloaded.returncode == 3 and "is not running" in reloaded.stderr, reloaded


def _start_agent(state_dir: Path) -> subprocess.Popen:
    (state_dir / "run").mkdir(parents=True)
    (state_dir / "state.json").write_text("{}")
    env = {**os.environ, "HLOCAL_AGENT": str(state_dir)}
    return subprocess.Popen([sys.executable, "-m", "higress_local.runtime.agent", str(state_dir)], env=env,
                            stderr=subprocess.PIPE, text=True)


def test_only_the_user_can_reach_the_agent() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to try as another user")
    # The other user runs the system's Python on hlocal's wire module (standard library only): this
    # venv may live where that user cannot read.
    repo = str(Path(__file__).resolve().parents[2])
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    nobody = {"user": 65534, "group": 65534, "extra_groups": [], "cwd": "/", "env": {"PYTHONPATH": repo}}
    try:
        probe = subprocess.run([python, "-c", "import higress_local.agent.wire"], capture_output=True,
                               timeout=60, **nobody)
    except OSError as exc:
        probe = subprocess.CompletedProcess([], 1, b"", str(exc).encode())
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot run {python} on this checkout: {probe.stderr[-200:]!r}")
    base = Path(tempfile.mkdtemp(prefix="hlocal-agent-", dir="/tmp"))
    base.chmod(0o755)
    state_dir = base / ".hlocal" / "s"
    agent = _start_agent(state_dir)
    try:
        wait_for(lambda: ping(state_dir), 60, "the agent to answer")
        sock = state_dir / "run" / "agent.sock"
        assert stat.S_IMODE(sock.stat().st_mode) == 0o600
        # Loosened by hand: the file system would let another user in, the agent does not.
        for path in (base / ".hlocal", state_dir, state_dir / "run"):
            path.chmod(0o755)
        sock.chmod(0o666)
        code = ("import sys; from higress_local.agent import wire as w\n"
                "s = w.connect(sys.argv[1], 5.0)\n"  # the file system lets this user in ...
                "try:\n    w.send(s, {'op': 'ping'}); print(w.receive(s))\n"
                "except OSError as e:\n    print('refused:', e)")  # ... the agent closes on it (or mid-send)
        done = subprocess.run([python, "-c", code, str(sock)], capture_output=True, text=True, timeout=60,
                              **nobody)
        assert done.returncode == 0 and done.stdout.startswith("refused: "), done
        assert ping(state_dir) == agent.pid
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
        shutil.rmtree(base)
    assert "refused a connection from uid 65534" in err


def test_an_agent_leaves_when_its_stack_is_gone_and_only_one_serves(tmp_path: Path) -> None:
    state_dir = tmp_path / ("long-" * 20) / ".hlocal" / "s"  # over AF_UNIX's 108 bytes: reached via /proc
    first = _start_agent(state_dir)
    try:
        assert wait_for(lambda: ping(state_dir), 60, "the agent to answer") == first.pid
        env = {**os.environ, "HLOCAL_AGENT": str(state_dir)}
        second = subprocess.run([sys.executable, "-m", "higress_local.runtime.agent", str(state_dir)], env=env,
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 0 and "another agent serves" in second.stderr
        assert ping(state_dir) == first.pid
        (state_dir / "state.json").unlink()
        assert first.wait(timeout=30) == 0
        assert "the stack's state is gone" in first.stderr.read()
        assert not (state_dir / "run" / "agent.sock").exists()
    finally:
        first.kill()
        first.communicate(timeout=30)


def test_the_agent_runs_the_hlocal_of_the_command_that_started_it(stack: Project, tmp_path: Path) -> None:
    # A second checkout, found only through the caller's working folder (no PYTHONPATH): the agent
    # starts in / and must still import this copy, or it declines every reload as "another hlocal".
    from higress_local.agent.control import stop_agent

    checkout = tmp_path / "checkout"
    shutil.copytree(Path(__file__).resolve().parents[2] / "higress_local", checkout / "higress_local",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    assert stop_agent(stack.state_dir)
    subprocess.run([sys.executable, "-c", "import sys, pathlib; from higress_local.agent.control import ensure_agent; "
                    "ensure_agent(pathlib.Path(sys.argv[1]))", str(stack.state_dir)],
                   cwd=checkout, env=env, check=True, timeout=60)
    wait_for(lambda: ping(stack.state_dir), 60, "the agent started from the second checkout to answer")
    _set(stack, "3")
    done = subprocess.run([sys.executable, "-m", "higress_local", "-f", str(stack.path), "reload"], cwd=checkout,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "reload served" in _served(stack)[-1], _served(stack)
    assert _version(stack) == "3"
