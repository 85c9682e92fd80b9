"""Finding a stack's processes without its state file: each carries a marker in its environment.

`up` starts every process (supervisors, Envoy, mocks, redis-server) with HLOCAL_STACK=<state folder>;
children inherit it. So `down` and `status` find them through /proc even when state.json is torn,
deleted, or was never written because `up` was killed, and a supervisor killed with SIGKILL does not
leave an Envoy nobody can stop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .proc import reap_child

if TYPE_CHECKING:
    import psutil

STACK_MARKER = "HLOCAL_STACK"
COMPONENT_MARKER = "HLOCAL_COMPONENT"  # gateway, backend, svc-<name>: inherited by the supervised program
AGENT_MARKER = "HLOCAL_AGENT"  # the reload agent's own (runtime/agent.py): not a component of the stack, `ls` skips it
STOP_GRACE_S = 5.0


def stack_marker(state_dir: Path) -> str:
    return str(Path(os.path.abspath(state_dir)))


def find_marked(state_dir: Path, marker: str = STACK_MARKER) -> list[psutil.Process]:
    """Live processes of this user whose environment names this stack under `marker` (never this process)."""
    import psutil  # only when looking for processes (it costs a one-shot command ~30 ms to import)

    wanted = stack_marker(state_dir)
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(marker) == wanted and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def component_of(proc: psutil.Process) -> str:
    import psutil

    try:
        return proc.environ().get(COMPONENT_MARKER, "?")
    except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
        return "?"


def stop_marked(state_dir: Path, grace: float = STOP_GRACE_S, marker: str = STACK_MARKER) -> list[str]:
    """Terminate every marked process (politely, then SIGKILL); return what was stopped."""
    import psutil

    procs = find_marked(state_dir, marker)
    if not procs:
        return []
    names = []
    for proc in procs:
        try:
            names.append(f"{component_of(proc)} {proc.name()} (pid {proc.pid})")
            proc.terminate()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    psutil.wait_procs(alive, timeout=grace)
    for proc in procs:
        reap_child(proc.pid)
    return names
