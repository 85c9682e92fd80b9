"""`hlocal up` on a running stack converges, as `docker compose up` does: it compares what it would start
now (hlocal.yaml and the command line) with what runs (state.json), then applies the difference: in place
through the reload path where it can, by a restart where only a restart can (ports, runtime, plugin chain,
gateway settings, services), and says which.
"""

from __future__ import annotations

import dataclasses

from ..config.project import Project
from ..errors import HlocalError
from ..state import StackState, StateRead
from . import RunningStack, check_running, runtime_for_state
from .base import Runtime, UpResult
from .reload import reload_running, restart_reasons
from .restart import restart_stack

def up_converging(runtime: Runtime, project: Project, *, recreate: bool, timeout: float,
                  found: StateRead) -> UpResult:
    """`up` on `runtime`: start the stack, or bring a running one in line with `project`.
    The caller holds the stack's lock, has built what was stale and read state.json (`found`)."""
    running = _running(project, found.state)
    if running is None:
        previous = runtime_for_state(project, None, found)
        if previous.name != runtime.name:  # what is left of it on the other runtime goes first
            previous.down(project, found.state)
            found = StateRead(None)
        return runtime.up(project, recreate=recreate, timeout=timeout, found=found)
    changes = restart_changes(project, running.state, runtime.name)
    if recreate or changes:
        if running.runtime.name != runtime.name:
            running.runtime.down(project, running.state)
        result, moved = restart_stack(runtime, project, running.state, timeout)
        result.applied = ["restarted the gateway: " + "; ".join(changes or ["--recreate"]), *moved]
        return result
    reloaded = reload_running(running, build=False, timeout=timeout)
    applied = ["applied by reload:", *(f"  {line}" for line in reloaded.lines)] if reloaded.changed else []
    return UpResult(state=reloaded.state or running.state, already_running=True, applied=applied)


def restart_changes(project: Project, state: StackState, runtime_name: str) -> list[str]:
    """What differs that only a restart applies, one phrase each ("port 10000 → 10080")."""
    changes = []
    if state.runtime != runtime_name:
        changes.append(f"runtime {state.runtime} → {runtime_name}")
    started_with = state.restart_key.gateway.get("port") if state.restart_key else None
    if started_with is not None and started_with != project.gateway.port:
        changes.append(f"port {state.gateway_port} → {project.gateway.port or 'a free one'}")
        # The rest is compared as if the port were unchanged: it is said above, in those words.
        project = dataclasses.replace(project, gateway=dataclasses.replace(project.gateway, port=started_with))
    return changes + restart_reasons(project, state)


def _running(project: Project, state: StackState | None) -> RunningStack | None:
    """The stack as it runs now (every component up), else None: then `up` starts it as usual."""
    try:
        return check_running(project, state)
    except HlocalError:
        return None
