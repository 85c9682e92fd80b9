"""Choosing a runtime, and finding the one a running stack was started with."""

from __future__ import annotations

from typing import Callable

from ..config import Project
from ..errors import ConfigError, NotRunning
from ..state import StackState
from .base import Runtime

NOT_RUNNING_HINT = "start it with `hlocal up`"


def _make(name: str) -> Runtime:
    if name == "native":
        from .native import NativeRuntime

        return NativeRuntime()
    if name == "docker":
        from .docker import DockerRuntime

        return DockerRuntime()
    raise ConfigError(f"runtime {name!r} is not available", "use `--runtime native` or `--runtime docker`")


def choose_runtime_name(project: Project, override: str | None) -> tuple[str, str]:
    """The runtime to use and why (for `auto`: docker when an engine answers, else native)."""
    wanted = override or project.runtime
    if wanted != "auto":
        return wanted, f"runtime: {wanted}" + (" (--runtime)" if override else f" ({project.file.name})")
    from .dockerenv import engine_answers

    answers, why = engine_answers()
    if answers:
        return "docker", "runtime auto: docker (a Docker engine answers; pass --runtime native for the embedded Envoy)"
    return "native", f"runtime auto: native, embedded Envoy ({why})"


def select_runtime(project: Project, override: str | None, echo: Callable[[str], None] | None = None) -> Runtime:
    """The runtime for `up`; refuses when the stack already runs on the other one."""
    name, why = choose_runtime_name(project, override)
    state = StackState.load_or_none(project.state_dir)
    if state is not None and state.runtime != name:
        other = _make(state.runtime)
        if any(c.state == "running" for c in other.status(project).components):
            raise ConfigError(
                f"stack {project.name!r} is already running on the {state.runtime} runtime",
                f"stop it first with `hlocal down`, then `hlocal up --runtime {name}`",
            )
    if echo and (override or project.runtime) == "auto":
        echo(why)
    return _make(name)


def runtime_for_state(project: Project, override: str | None) -> Runtime:
    """The runtime that started the stack (from its state), else the configured one."""
    state = StackState.load_or_none(project.state_dir)
    if state is not None:
        return _make(state.runtime)
    name, _ = choose_runtime_name(project, override)
    return _make(name)


def resolve_flavor(project: Project, override: str | None) -> str:
    if project.gateway.flavor:
        return project.gateway.flavor
    name, _ = choose_runtime_name(project, override)
    return "higress" if name == "docker" else "envoy"


def require_running(project: Project) -> StackState:
    state = StackState.load(project.state_dir)
    if state is None or not state.ready:
        raise NotRunning(f"stack {project.name!r} is not running", NOT_RUNNING_HINT)
    status = runtime_for_state(project, None).status(project)
    if not status.running:
        dead = ", ".join(c.name for c in status.components if c.state != "running")
        raise NotRunning(f"stack {project.name!r} is not fully running ({dead} not running)",
                         "see `hlocal status`; restart with `hlocal up --recreate`")
    return state
