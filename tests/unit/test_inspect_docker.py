"""gateway.inspect on the docker runtime, without an engine: what `up` would render and run beside the stack."""

from __future__ import annotations

from pathlib import Path

from higress_local.config.project import parse_project
from higress_local.inspect.wiring import collector_argv
from higress_local.render.envoy import TAP_CLIENT, TAP_UPSTREAM
from higress_local.runtime.dockerplan import plan_docker

from .test_state import sample


def _opt(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_the_collector_reads_both_logs_from_the_one_output_file_when_told() -> None:
    state = sample()
    native = collector_argv(Path("/s"), state, None)
    assert _opt(native, "--gateway-log") == "/s/logs/gateway.log"
    assert _opt(native, "--access-log") == state.require_layout().access_log
    docker = collector_argv(Path("/s"), state, None, output=Path("/s/logs/gateway-output.log"))
    assert _opt(docker, "--gateway-log") == _opt(docker, "--access-log") == "/s/logs/gateway-output.log"
    assert _opt(docker, "--admin") == f"127.0.0.1:{state.admin_port}"  # the published admin port


def test_a_docker_plan_with_inspect_renders_both_taps_and_keeps_logs_in_the_container_output(tmp_path) -> None:
    project = parse_project({"name": "d", "runtime": "docker", "gateway": {"inspect": True}}, tmp_path / "hlocal.yaml")
    plan = plan_docker(project, "envoy", check_ports=False)
    assert plan.layout.inspect_dir and plan.layout.access_log == "/dev/stdout"
    rendered = (project.state_dir / "envoy.yaml").read_text()
    assert TAP_CLIENT in rendered and TAP_UPSTREAM in rendered
    assert (project.state_dir / "inspect" / "requests").is_dir()  # the ring's folder, before anything starts
