"""Faults an adversarial user met: links in .hlocal/, a corrupt state, a killed supervisor, two `up`s at
once, SIGTERM/SIGHUP, a full disk. Each: documented exit code, one error + one hint line, no traceback,
nothing left running, nothing outside .hlocal/<name>/ touched."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support import (HLOCAL, Project, Result, processes_mentioning, reload_stopped_by_sigterm, wait_for,
                     wait_until_serving_the_recorded_version)

pytestmark = pytest.mark.slow


@pytest.fixture
def logger(make_project, plugin_wasm):
    def make(**extra) -> Project:
        config = {"gateway": {"port": 0}, "plugins": [{"name": "logger", "wasm": "l.wasm", "config": {}}], **extra}
        return make_project(config, files={"l.wasm": plugin_wasm("logger")}, name="hard", runtime="native")

    return make


def assert_clean_error(result: Result, code: int, *words: str) -> None:
    assert result.returncode == code, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    hints = [line for line in result.stderr.splitlines() if line.startswith("hint: ")]
    assert len(errors) == 1 and len(hints) == 1, result
    assert "Traceback" not in result.output, result
    for word in words:
        assert word in result.stderr, result


def nothing_left(project: Project) -> None:
    assert project.leftovers() == [], project.leftovers()


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_linked_state_folder_is_refused_and_its_target_untouched(logger, tmp_path) -> None:
    project = logger()
    elsewhere = tmp_path / "somewhere"
    for sub in ("run", "services", "modules"):
        (elsewhere / sub).mkdir(parents=True)
        (elsewhere / sub / "keep.txt").write_text(f"user file in {sub}")
    before = tree(elsewhere)
    project.state_dir.parent.mkdir(parents=True)
    project.state_dir.symlink_to(elsewhere)
    for command in (["up"], ["down"], ["up", "--recreate"]):
        assert_clean_error(project.hlocal(*command), 3, "symbolic link", f".hlocal/{project.name}")
    assert tree(elsewhere) == before
    nothing_left(project)
    project.state_dir.unlink()


def test_a_linked_log_file_is_refused_and_its_target_not_overwritten(logger, tmp_path) -> None:
    project = logger()
    assert project.hlocal("up").returncode == 0
    assert project.hlocal("down").returncode == 0
    victim = tmp_path / "bashrc"
    victim.write_text("export KEEP=1\n")
    log = project.state_dir / "logs" / "backend.log"
    log.unlink()
    log.symlink_to(victim)
    assert_clean_error(project.hlocal("up"), 3, "logs/backend.log", "symbolic link")
    assert victim.read_text() == "export KEEP=1\n"
    nothing_left(project)
    log.unlink()


def test_state_and_logs_are_readable_by_the_user_only(logger) -> None:
    project = logger()
    assert project.hlocal("up").returncode == 0
    assert project.hlocal("request", "GET", "/x", "-H", "Authorization: Bearer secret").returncode == 0
    assert os.stat(project.state_dir).st_mode & 0o777 == 0o700
    for path in [project.state_dir / "state.json", *(project.state_dir / "logs").glob("*.log")]:
        assert os.stat(path).st_mode & 0o077 == 0, f"{path} is readable by others"


@pytest.mark.parametrize("content", ['{"name": "t', "{}", "[1, 2]", "\x00\xff"])
def test_a_corrupt_state_is_reported_and_down_still_stops_everything(logger, content) -> None:
    project = logger()
    assert project.hlocal("up").returncode == 0
    (project.state_dir / "state.json").write_bytes(content.encode("latin-1"))
    status = project.hlocal("status")
    assert_clean_error(status, 1, "degraded", "unreadable")
    assert "envoy" in status.stdout  # the processes, found by their marker
    assert_clean_error(project.hlocal("probe"), 3, "state.json", "hlocal down")
    down = project.hlocal("down")
    assert down.returncode == 0 and "envoy" in down.stdout, down
    nothing_left(project)


def test_up_recreate_recovers_a_corrupt_state_without_port_in_use(logger) -> None:
    project = logger(gateway={"port": 0})
    assert project.hlocal("up").returncode == 0
    (project.state_dir / "state.json").write_text("{")
    assert_clean_error(project.hlocal("up"), 3, "state.json", "--recreate")
    again = project.hlocal("up", "--recreate")
    assert again.returncode == 0, again
    assert project.hlocal("status").returncode == 0


def test_an_orphan_of_the_same_stack_is_never_port_in_use(make_project, plugin_wasm) -> None:
    from higress_local.system.ports import free_port

    port = free_port()
    project = make_project({"gateway": {"port": port}, "plugins": [{"name": "logger", "wasm": "l.wasm", "config": {}}]},
                           files={"l.wasm": plugin_wasm("logger")}, name="orphan", runtime="native")
    assert project.hlocal("up").returncode == 0
    (project.state_dir / "state.json").unlink()  # the state is gone, the processes are not
    again = project.hlocal("up")
    assert again.returncode == 0 and "in use" not in again.output, again


def test_processes_die_with_a_killed_supervisor_or_down_stops_them(logger) -> None:
    project = logger()
    assert project.hlocal("up").returncode == 0
    state = project.state()
    supervisor = state["components"]["gateway"]["pid"]
    envoy = json.loads(Path(state["components"]["gateway"]["status_file"]).read_text())["pid"]
    os.kill(supervisor, signal.SIGKILL)
    wait_for(lambda: not _alive(envoy), 30, "Envoy to stop after its supervisor was killed")
    down = project.hlocal("down")
    assert down.returncode == 0, down
    nothing_left(project)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_two_ups_at_once_are_serialised(logger) -> None:
    project = logger()
    argv = [*HLOCAL, "-f", str(project.path), "up"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (project.state_dir / "stack.lock").exists(), 60, "the first up to lock")
    second = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outs = [p.communicate(timeout=240) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outs
    assert any("already running" in out for out, _ in outs), outs
    gateways = [p for p in processes_mentioning(str(project.state_dir)) if "envoy" in p[1] and "supervise" not in p[1]]
    assert len(gateways) == 1, gateways


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_during_up_stops_it_like_ctrl_c(logger, signum, code) -> None:
    project = logger()
    proc = subprocess.Popen([*HLOCAL, "-f", str(project.path), "up", "--timeout", "120"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: "gateway" in ((project.state() or {}).get("components") or {}), 120, "the gateway to start")
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr
    nothing_left(project)
    assert project.state() is None


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (root only): a real ENOSPC, not a simulated one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); the disk-full path needs root")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_exit_3_with_the_cause_and_no_partial_copy(small_disk, plugin_wasm, tmp_path) -> None:
    # The project lives on the small disk; its module (about 2 MB) fits once, not twice.
    module = plugin_wasm("logger")
    project = Project(path=small_disk, config={"name": "full", "runtime": "native", "gateway": {"port": 0},
                                               "plugins": [{"name": "logger", "wasm": "l.wasm", "config": {}}]})
    project.write()
    shutil.copyfile(module, small_disk / "l.wasm")
    filler = small_disk / "filler"
    free = shutil.disk_usage(small_disk).free
    filler.write_bytes(b"\0" * max(0, free - module.stat().st_size // 2))
    try:
        result = project.hlocal("up")
        assert_clean_error(result, 3, "no space left")
        assert not list(project.state_dir.rglob("*.tmp")) and not list(project.state_dir.rglob("*.wasm"))
        nothing_left(project)
    finally:
        project.hlocal("down")


def test_logs_refuses_a_component_name_that_is_a_path(logger) -> None:
    project = logger()
    assert project.hlocal("up").returncode == 0
    assert_clean_error(project.hlocal("logs", "../../x"), 2, "not a component name")


def test_render_works_while_the_stack_runs(logger, tmp_path) -> None:
    from higress_local.system.ports import free_port

    project = logger(gateway={"port": free_port()})
    assert project.hlocal("up").returncode == 0
    out = tmp_path / "ejected"
    rendered = project.hlocal("render", "--out", str(out))
    assert rendered.returncode == 0, rendered
    assert (out / "envoy.yaml").exists() and "higress_local.mock" in rendered.stdout


def test_a_signal_during_reload_leaves_the_state_true_to_what_envoy_serves(make_project, transformer_wasm) -> None:
    """The reload run by the CLI itself (test_agent.py has the same through the reload agent)."""
    from higress_local.wasm.module import add_custom_section

    config = {"reqRules": [{"operate": "remove", "headers": [{"key": "X-remove"}]}]}
    project = make_project({"gateway": {"port": 0}, "plugins": [{"name": "t", "wasm": "t.wasm", "config": config}]},
                           files={"t.wasm": transformer_wasm}, name="sigreload", runtime="native")
    no_agent = {"HLOCAL_NO_AGENT": "1"}
    assert project.hlocal("up", env=no_agent).returncode == 0
    # A new build: same code, one more custom section; Envoy compiles 6 MB again (seconds).
    (project.path / "t.wasm").write_bytes(add_custom_section(transformer_wasm.read_bytes(), "hlocal-test", b"2"))
    code, stderr, before = reload_stopped_by_sigterm(project, "t", env=no_agent)
    assert code == 143 and "Traceback" not in stderr, stderr
    wait_until_serving_the_recorded_version(project, "t")
    assert (project.state_dir / "ecds" / "t.json").read_text() == before
    assert not (project.state_dir / "logs" / "agent.log").exists()


def test_a_watched_file_deleted_by_hand_is_restored_by_reload(make_project, plugin_wasm) -> None:
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "headers", "wasm": "h.wasm", "config": {"response_headers": {"x-v": "1"}}}]},
                           files={"h.wasm": plugin_wasm("headers")}, name="deleted", runtime="native")
    assert project.hlocal("up").returncode == 0
    (project.state_dir / "ecds" / "headers.json").unlink()
    (project.state_dir / "xds" / "routes.json").unlink()
    project.config["plugins"][0]["config"] = {"response_headers": {"x-v": "2"}}
    project.write()
    reloaded = project.hlocal("reload")
    assert reloaded.returncode == 0 and "Traceback" not in reloaded.output, reloaded
    assert "restored ecds/headers.json" in reloaded.stdout and "restored xds/routes.json" in reloaded.stdout
    answer = project.hlocal("request", "GET", "/", "--json").json()
    assert answer["response"]["headers"]["x-v"] == "2", answer


def test_a_body_over_the_mock_limit_is_reported_as_the_limit(logger, tmp_path) -> None:
    project = logger()
    assert project.hlocal("up").returncode == 0
    big = tmp_path / "big.bin"
    with open(big, "wb") as out:
        out.truncate(65 * 1024 * 1024)  # sparse: 65 MiB of zeros without writing them
    result = project.hlocal("request", "POST", "/upload", "-d", f"@{big}")
    assert_clean_error(result, 2, "refuses request bodies over 67,108,864 bytes", "68,157,440 bytes")
    assert "is the stack up" not in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_up_in_the_foreground_stops_the_stack_on_a_stop_signal(logger, signum) -> None:
    from support import LineReader

    project = logger()
    proc = subprocess.Popen([*HLOCAL, "-f", str(project.path), "up", "--foreground"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    output = LineReader(proc.stdout)
    line = output.next(120, "up to start")
    while "running in the foreground" not in line:
        line = output.next(120, "up to say it runs in the foreground")
    assert project.hlocal("status").returncode == 0
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == 0
    nothing_left(project)
    assert project.state() is None
