"""Choosing a runtime, and finding the one a stack was started with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..config.project import Project
from ..errors import ConfigError, HlocalError, NotRunning
from ..settings import RUNTIME_NAMES
from ..system.ownfiles import read_private, write_private
from ..state import StackState, StateRead
from .base import Runtime
from ..wasm.plugins import check_project

NOT_RUNNING_HINT = "start it with `hlocal up`"
# Written by `up` before anything starts and kept when `up` fails (the state is removed then), so
# `logs`, `status` and `down` after a failed start still read the runtime that ran it.
LAST_RUNTIME_FILE = "last_runtime"


def _make(name: str) -> Runtime:
    # Only the chosen runtime loads (docker's pulls in the Docker SDK): test_import_graph.py allows it.
    if name == "native":
        from .native import NativeRuntime

        return NativeRuntime()
    if name == "docker":
        from .docker import DockerRuntime

        return DockerRuntime()
    raise ConfigError(f"runtime {name!r} is not available", "use `--runtime native` or `--runtime docker`")


def higress_only_reason(project: Project) -> str | None:
    """Why this project needs the Higress gateway image (None: the embedded Envoy runs all of it)."""
    if project.gateway.flavor == "higress":
        return f"gateway.flavor: higress in {project.file.name}"

    try:
        report = check_project(project, "envoy")
    except HlocalError:
        # A module not built yet (or unreadable): `up` builds or reports it; the embedded runtime
        # is the default until a plugin proves it needs more.
        return None
    # Only what the Higress gateway does run counts: a module that runs nowhere gets its error from
    # the embedded runtime, quickly, instead of after a container start.
    refused = [c for c in report.plugins if not c.compat.runnable and c.elsewhere.get("higress")]
    if not refused:
        return None
    first = refused[0]
    problem = first.compat.problems[0] if first.compat.problems else "it cannot run on stock Envoy"
    problem = problem.split(" (", 1)[0].split(";", 1)[0]  # the first clause: one line, not a paragraph
    more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
    return f"plugin {first.plugin.name} needs the Higress gateway: {problem}{more}"


def choose_runtime_name(project: Project, override: str | None) -> tuple[str, str]:
    """The runtime to use and one line saying why.

    `auto` is the embedded (native) Envoy whenever every plugin runs there: it starts in well under a
    second and needs no image. Docker is chosen only when something needs the Higress gateway image.
    """
    wanted = override or project.runtime
    if wanted != "auto":
        return wanted, f"runtime: {wanted}" + (" (--runtime)" if override else f" ({project.file.name})")
    reason = higress_only_reason(project)
    if reason is None:
        return "native", ("runtime auto: native, embedded Envoy (every plugin runs there; "
                          "--runtime docker runs the Higress gateway image)")
    return "docker", f"runtime auto: docker ({reason})"


def last_runtime(project: Project) -> str | None:
    """The runtime of the last `up` of this stack, even one that failed."""
    try:
        data = read_private(project.state_dir / LAST_RUNTIME_FILE, cap=64)
    except HlocalError:
        return None
    name = (data or b"").decode("ascii", errors="replace").strip()
    return name if name in RUNTIME_NAMES else None


def remember_runtime(project: Project, name: str) -> None:
    write_private(project.state_dir / LAST_RUNTIME_FILE, f"{name}\n".encode())


def select_runtime(project: Project, override: str | None, echo: Callable[[str], None] | None = None,
                   switch: bool = False, found: StateRead | None = None) -> Runtime:
    """The runtime for `up`; refuses when the stack already runs on the other one, unless the caller
    `switch`es it over (`up` on a running stack: runtime/converge.py restarts it there). `found`:
    state.json as the caller read it, else read here."""
    name, why = choose_runtime_name(project, override)
    found = found or StackState.read(project.state_dir)
    state = found.state
    if state is not None and state.runtime != name and not switch:
        other = _make(state.runtime)
        if any(c.state == "running" for c in other.status(project, found).components):
            raise ConfigError(
                f"stack {project.name!r} is already running on the {state.runtime} runtime",
                f"stop it first with `hlocal down`, then `hlocal up --runtime {name}`",
            )
    if echo and (override or project.runtime) == "auto":
        echo(why)
    remember_runtime(project, name)
    return _make(name)


def runtime_for_state(project: Project, override: str | None, found: StateRead | None = None) -> Runtime:
    """The runtime that started the stack (state, or the last `up` even if it failed), else the configured one.
    `found`: state.json as the caller read it, else read here."""
    state = (found or StackState.read(project.state_dir)).state
    name = state.runtime if state is not None else last_runtime(project)
    if name is None:
        name, _ = choose_runtime_name(project, override)
    return _make(name)


def resolve_flavor(project: Project, override: str | None) -> str:
    if project.gateway.flavor:
        return project.gateway.flavor
    name, _ = choose_runtime_name(project, override)
    return "higress" if name == "docker" else "envoy"


@dataclass(frozen=True)
class RunningStack:
    """A running stack as one command sees it: its state.json, read once, and the runtime that started it."""

    project: Project
    state: StackState
    runtime: Runtime


def open_running(project: Project) -> RunningStack:
    """The running stack, reading its state once; NotRunning when it is not (fully) up."""
    return check_running(project, StackState.load(project.state_dir))


def check_running(project: Project, state: StackState | None) -> RunningStack:
    """As open_running, for a state the caller has just read (under the stack lock)."""
    if state is None or not state.ready:
        raise NotRunning(f"stack {project.name!r} is not running", NOT_RUNNING_HINT)
    runtime = _make(state.runtime)
    status = runtime.status_of(project, state)
    if not status.running:
        dead = ", ".join(c.name for c in status.components if c.state != "running")
        raise NotRunning(f"stack {project.name!r} is not fully running ({dead} not running)",
                         "see `hlocal status`; restart with `hlocal up --recreate`")
    return RunningStack(project, state, runtime)


def require_running(project: Project) -> StackState:
    return open_running(project).state
