"""`hlocal render`: write a stack's files without starting it, with the commands to run it by hand."""

from __future__ import annotations

import dataclasses
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .config import Project
from .errors import ConfigError
from .state import StackState


@dataclass
class Rendered:
    runtime: str
    directory: Path
    instructions: list[str] = field(default_factory=list)


def render_stack(project: Project, runtime_override: str | None, out: str | None) -> Rendered:
    from .runtime import choose_runtime_name

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
        from .runtime.docker import plan_docker

        flavor = project.gateway.flavor or "higress"
        plan = plan_docker(target, flavor)
        compose = target.state_dir / "compose.yaml"
        return Rendered("docker", target.state_dir, [
            f"docker compose -f {shlex.quote(str(compose))} up -d",
            f"curl -i http://127.0.0.1:{plan.state.gateway_port}/",
            f"docker compose -f {shlex.quote(str(compose))} down -v",
        ])
    from .runtime.native import find_envoy
    from .runtime.stage import plan_native

    flavor = project.gateway.flavor or "envoy"
    plan = plan_native(target, flavor)
    state = plan.state
    mock = [sys.executable, "-m", "higress_local.mock", "--port", str(state.backend_port),
            "--control-port", str(state.control_port), "--config", str(plan.backend_config)]
    envoy = [find_envoy(), "-c", str(plan.bootstrap), "--disable-hot-restart",
             "--component-log-level", f"wasm:{project.gateway.wasm_log_level}"]
    return Rendered("native", target.state_dir, [
        f"{shlex.join(mock)} &",
        shlex.join(envoy),
        f"curl -i http://127.0.0.1:{state.gateway_port}/",
    ])
