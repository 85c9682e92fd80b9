"""`hlocal ls`: every stack running on this machine, whichever folder started it.

Native stacks are found through the marker every process of a stack carries in its environment
(HLOCAL_STACK=<state folder>, system/orphans.py); docker stacks through their containers' labels
(io.hlocal.stack, io.hlocal.config, render/compose.py). Each stack's state.json then says where it
listens; nothing here needs the stack's hlocal.yaml.
"""

from __future__ import annotations

import os
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from ..system.proc import ProcessRecord
from ..system.orphans import STACK_MARKER
from ..state import StackState
from ..errors import EnvironmentProblem
from ..render.compose import LABEL
from ..system.dockerenv import docker_client

ADMIN_TIMEOUT_S = 0.5


@dataclass
class StackEntry:
    """One running stack as `hlocal ls` shows it."""

    name: str
    folder: str  # the project folder (where hlocal.yaml is)
    runtime: str
    url: str | None
    uptime_seconds: float | None
    health: str  # healthy | starting | degraded | unknown
    state_dir: str
    config_file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def marked_state_dirs() -> dict[str, list[int]]:
    """State folders named by the marker of some live process of this user, with their pids."""
    found: dict[str, list[int]] = {}
    me = os.getpid()
    for proc in psutil.process_iter(["pid"]):
        if proc.pid == me:
            continue
        try:
            marker = proc.environ().get(STACK_MARKER)
            if marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.setdefault(marker, []).append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return found


def native_stacks(now: float | None = None) -> list[StackEntry]:
    now = time.time() if now is None else now
    out = []
    for state_dir, _pids in sorted(marked_state_dirs().items()):
        directory = Path(state_dir)
        state = StackState.load_or_none(directory)
        folder = str(directory.parent.parent)  # <folder>/.hlocal/<name>
        if state is None:
            out.append(StackEntry(name=directory.name, folder=folder, runtime="native", url=None,
                                  uptime_seconds=None, health="unknown", state_dir=state_dir))
            continue
        out.append(StackEntry(
            name=state.name, folder=str(Path(state.config_file).parent), runtime=state.runtime, url=state.gateway_url,
            uptime_seconds=now - state.started, health=_native_health(state), state_dir=state_dir,
            config_file=state.config_file))
    return out


def _native_health(state: StackState) -> str:
    alive = [ProcessRecord(c.pid, c.start_ticks or 0).alive() for c in state.components.values() if c.pid]
    if not state.ready:
        return "starting" if any(alive) else "degraded"
    if not alive or not all(alive):
        return "degraded"
    return "healthy" if _admin_ready(state.admin_url) else "degraded"


def _admin_ready(admin_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{admin_url}/ready", timeout=ADMIN_TIMEOUT_S) as response:
            return response.status == 200
    except OSError:
        return False


def docker_stacks(now: float | None = None) -> list[StackEntry]:
    """Stacks with containers labelled io.hlocal.stack; none when no engine answers."""
    now = time.time() if now is None else now
    try:
        client = docker_client(timeout=2.0)
    except EnvironmentProblem:
        return []
    groups: dict[tuple[str, str], list[Any]] = {}
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        key = (container.labels.get(LABEL, "?"), container.labels.get("io.hlocal.config", ""))
        groups.setdefault(key, []).append(container)
    out = []
    for (name, config), containers in sorted(groups.items()):
        folder = str(Path(config).parent) if config else "?"
        state_dir = Path(folder) / ".hlocal" / name
        state = StackState.load_or_none(state_dir) if config else None
        running = [c for c in containers if c.status == "running"]
        health = "healthy" if running and len(running) == len(containers) else ("degraded" if running else "stopped")
        if health == "stopped":
            continue
        out.append(StackEntry(
            name=name, folder=folder, runtime="docker", url=state.gateway_url if state else None,
            uptime_seconds=(now - state.started) if state else None,
            health=health if state is None or state.ready else "starting",
            state_dir=str(state_dir), config_file=config or None))
    return out


def running_stacks(include_docker: bool = True) -> list[StackEntry]:
    """Native stacks, then docker ones."""
    return native_stacks() + (docker_stacks() if include_docker else [])
