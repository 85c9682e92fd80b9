"""What `up` on a running stack says only a restart applies (runtime/converge.py), by value."""

from __future__ import annotations

from higress_local.config.project import load_project
from higress_local.runtime.converge import restart_changes
from higress_local.runtime.stage import restart_key
from higress_local.state import StackState


def _running(project, gateway_port: int = 41000, runtime: str = "native") -> StackState:
    return StackState(name=project.name, runtime=runtime, flavor="envoy", config_file=str(project.file), started=0.0,
                      gateway_port=gateway_port, admin_port=41001, backend_port=41002, control_port=41003,
                      ready=True, restart_key=restart_key(project))


def test_the_same_project_needs_no_restart(tmp_path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: conv\ngateway: {port: 0}\n")
    project = load_project(tmp_path)
    assert restart_changes(project, _running(project), "native") == []


def test_a_port_from_the_command_line_is_said_as_old_to_new_and_only_once(tmp_path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: conv\ngateway: {port: 0}\n")
    state = _running(load_project(tmp_path))
    assert restart_changes(load_project(tmp_path, port=10080), state, "native") == ["port 41000 → 10080"]
    (tmp_path / "hlocal.yaml").write_text("name: conv\ngateway: {port: 10080}\n")
    fixed = load_project(tmp_path)
    assert restart_changes(load_project(tmp_path, port=0), _running(fixed, 10080), "native") == \
        ["port 10080 → a free one"]


def test_a_runtime_switch_and_other_gateway_settings_are_named(tmp_path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: conv\ngateway: {port: 0}\n")
    state = _running(load_project(tmp_path))
    (tmp_path / "hlocal.yaml").write_text("name: conv\ngateway: {port: 0, admin_port: 19001}\n")
    assert restart_changes(load_project(tmp_path), state, "docker") == [
        "runtime native → docker", "gateway settings changed (gateway.admin_port)"]


def test_the_up_summary_says_what_was_applied_or_that_nothing_changed(tmp_path, capsys) -> None:
    from higress_local.cli.report import print_up_summary
    from higress_local.runtime.base import UpResult

    (tmp_path / "hlocal.yaml").write_text("name: conv\n")
    state = _running(load_project(tmp_path))
    print_up_summary(UpResult(state=state, already_running=True,
                              applied=["applied by reload:", "  plugin p: config changed, live in 0.10 s"]))
    assert capsys.readouterr().out.splitlines()[:3] == [
        "conv is already running (native); applied by reload:", "  plugin p: config changed, live in 0.10 s",
        "  gateway  http://127.0.0.1:41000"]
    print_up_summary(UpResult(state=state, already_running=True))
    assert capsys.readouterr().out.splitlines()[0] == \
        "conv is already running (native); nothing changed (--recreate restarts it)"
    print_up_summary(UpResult(state=state, seconds=1.0, applied=["restarted the gateway: port 41000 → 10080"]))
    assert capsys.readouterr().out.splitlines()[1] == "restarted the gateway: port 41000 → 10080"
