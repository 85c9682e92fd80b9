"""Restarting a running stack (`reload --restart`, `up` after a change only a restart applies).

What a plain `up --recreate` would get wrong here: a `port: 0` gateway would come back on another free
port, under the URL the user (and their tests) already hold. (The stack's old reload agent is stopped by
every fresh start, in `Runtime.up`.)
"""

from __future__ import annotations

import dataclasses

from ..config.project import Project
from ..errors import PortInUse
from ..state import StackState
from .base import Runtime, UpResult
from .stage import restart_key


def restart_stack(runtime: Runtime, project: Project, before: StackState | None,
                  timeout: float) -> tuple[UpResult, list[str]]:
    """Start the stack afresh on `runtime`; a `port: 0` gateway asks for the
    port it had (`before`). Returns the result and what the user should know (the port moved)."""
    kept = before.gateway_port if project.gateway.port == 0 and _started_on_any_port(before) else None
    if kept is None:
        return runtime.restart_gateway(project, before, timeout), []
    pinned = dataclasses.replace(project, gateway=dataclasses.replace(project.gateway, port=kept))
    try:
        result = runtime.restart_gateway(pinned, before, timeout)
    except PortInUse as exc:
        if exc.port != kept:
            raise
        # Taken by another process while the stack was down: any free port, as `port: 0` asks.
        result = runtime.restart_gateway(project, before, timeout)
        return result, [f"port {kept} is in use now; the gateway moved to port {result.state.gateway_port}"]
    # What the stack was started from is still `port: 0`: a later `up` or `reload` compares with that.
    result.state.restart_key = restart_key(project)
    result.state.save(project.state_dir)
    return result, []


def _started_on_any_port(state: StackState | None) -> bool:
    """The stack was started with `port: 0` (a move from a fixed port to 0 asks for a new one)."""
    return state is not None and state.restart_key is not None and state.restart_key.gateway.get("port") == 0
