"""The processes a stack runs on this machine: every component on native, the request inspector's beside a
compose stack on docker. Each starts under hlocal's supervisor, in its own process group, carrying the
stack's marker (system/orphans.py); its record in state.json is how `status` describes it and `down`
stops it."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..config.project import Project
from ..render.commandlines import supervised
from ..state import ComponentState, StackState
from ..system.orphans import COMPONENT_MARKER, STACK_MARKER, stack_marker
from ..system.proc import ProcessRecord, own_pythonpath, spawn, stop_group
from .base import ComponentStatus
from .files import GatewayFiles


def spawn_component(project: Project, state: StackState, name: str, argv: list[str], ports: dict[str, int]) -> None:
    """Start `argv` supervised, its output in logs/<name>.log (the user's only), and record it in the state."""
    files = GatewayFiles(project.state_dir)
    status_file, log_file = files.status_file(name), files.log(name)
    status_file.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=own_pythonpath(),
               **{STACK_MARKER: stack_marker(project.state_dir), COMPONENT_MARKER: name})
    proc = spawn(supervised(str(status_file), argv), log_file=log_file, env=env, private=True)
    record = ProcessRecord.of(proc.pid)
    state.components[name] = ComponentState(
        name=name, pid=proc.pid, start_ticks=record.start_ticks,
        status_file=str(status_file), log_file=str(log_file), ports=ports,
    )
    state.save(project.state_dir)  # saved before waiting: a killed `up` still leaves a trail for `down`


def process_record(component: ComponentState) -> ProcessRecord | None:
    """The supervisor's process as recorded (None for a container, which has no pid of ours)."""
    if component.pid is None:
        return None
    return ProcessRecord(component.pid, component.start_ticks or 0)


def stop_components(state: StackState, names: list[str]) -> list[str]:
    """Stop the recorded processes named, in that order; return those that were running."""
    stopped = []
    for name in names:
        component = state.components.get(name)
        record = process_record(component) if component else None
        if record is not None and stop_group(record):
            stopped.append(name)
    return stopped


def read_exit(component: ComponentState) -> dict:
    """What the supervisor recorded: the program's pid, start time and, once it ended, how."""
    try:
        return json.loads(Path(component.status_file or "").read_text())
    except (OSError, ValueError):
        return {}


def component_status(component: ComponentState, record: ProcessRecord | None) -> ComponentStatus:
    exit_info = read_exit(component)
    child_pid = exit_info.get("pid") or component.pid
    if record is not None and record.alive():
        started = exit_info.get("started")
        return ComponentStatus(
            name=component.name, state="running", pid=child_pid, ports=component.ports,
            uptime_seconds=(time.time() - started) if started else None,
        )
    code = exit_info.get("returncode")
    sig = exit_info.get("signal")
    detail = f"killed by {sig}" if sig else ("" if code is not None else "exit status unknown (killed together with its supervisor)")
    return ComponentStatus(name=component.name, state="exited", pid=child_pid, ports=component.ports,
                           exit_code=code, detail=detail)
