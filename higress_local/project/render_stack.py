"""`hlocal render`: write a stack's files without starting it, with the commands to run it by hand."""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..render.commandlines import MockLine, envoy_args
from ..config.project import Project
from ..errors import ConfigError
from ..runtime import choose_runtime_name
from ..runtime.docker import plan_docker
from ..runtime.envoys import find_envoy
from ..mcpsession.wiring import session_argv
from ..system.ports import free_port
from ..runtime.native import token_file
from ..runtime.services import native_argv
from ..runtime.stage import plan_native
from ..state import StackState


@dataclass
class Rendered:
    runtime: str
    directory: Path
    instructions: list[str] = field(default_factory=list)


def render_stack(project: Project, runtime_override: str | None, out: str | None) -> Rendered:
    runtime, _ = choose_runtime_name(project, runtime_override)
    if out is None:
        state = StackState.load(project.state_dir)
        if state is not None:
            raise ConfigError(f"stack {project.name!r} is running from {project.state_dir}",
                              "pass --out DIR to render elsewhere, or `hlocal down` first")
        target = project
    else:
        target = dataclasses.replace(project, state_root=Path(out).resolve())
    if runtime == "docker":
        flavor = project.gateway.flavor or "higress"
        plan = plan_docker(target, flavor, check_ports=False)
        compose = target.state_dir / "compose.yaml"
        return Rendered("docker", target.state_dir, [
            f"docker compose -f {shlex.quote(str(compose))} up -d",
            f"curl -i http://127.0.0.1:{plan.state.gateway_port}/",
            f"docker compose -f {shlex.quote(str(compose))} down -v",
        ])
    flavor = project.gateway.flavor or "envoy"
    plan = plan_native(target, flavor, check_ports=False)
    state = plan.state
    token = token_file(target.state_dir, state)
    lines = []
    # The same command lines `hlocal up` runs (render/commandlines.py), without hlocal's supervisor.
    backend = MockLine(name="backend", port=state.backend_port, control_port=state.control_port,
                       config=str(plan.files.backend_config), token_file=token)
    lines.append(f"{shlex.join(backend.native())} &")
    for service in state.services.values():
        for replica in service.replicas:  # mock.replicas: a mock each
            lines.append(f"{shlex.join(native_argv(service, token, replica))} &")
        if service.how in ("mock", "redis") and not service.replicas:
            lines.append(f"{shlex.join(native_argv(service, token))} &")
    if plan.layout.mcp_session_port:  # gateway.mcp_server: the session process `up` starts
        session = session_argv(plan.layout.mcp_session_port, free_port(), state.gateway_port, project.gateway.mcp_server)
        lines.append(f"{shlex.join(session)} &")
    envoy = envoy_args(str(plan.files.bootstrap), project.gateway, capture=True)
    lines.append(shlex.join([find_envoy(project.gateway), *envoy]))
    lines.append(f"curl -i http://127.0.0.1:{state.gateway_port}/")
    return Rendered("native", target.state_dir, lines)
