"""`hlocal watch` / `up --watch`: rebuild and reload when plugin sources or hlocal.yaml change."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable

from ..errors import HlocalError
from ..config.project import load_project
from ..runtime.reload import no_progress, reload_stack
from ..state import StackState
from ..wasm.gobuild import source_files

POLL_SECONDS = 0.25
DEBOUNCE_SECONDS = 0.3
Phase = Callable[[str], ContextManager[Any]]  # a step that may last: the CLI shows its progress (runtime/reload.py)


def watched_files(config_file: Path) -> dict[Path, float]:
    """hlocal.yaml, every plugin's sources (when it has a build) or its wasm (when it has none)."""
    files = [config_file]
    try:
        project = load_project(config_file)
    except HlocalError:
        project = None  # a broken hlocal.yaml: keep watching it until it is fixed
    if project is not None:
        for plugin in project.plugins:
            files += source_files(plugin) if plugin.build is not None else [plugin.wasm]
    return {path: _mtime(path) for path in files}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return -1.0


def changed_files(before: dict[Path, float], after: dict[Path, float]) -> list[Path]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


@dataclass
class Cycle:
    """One rebuild-and-reload, as one line of output."""

    changed: list[Path]
    line: str
    ok: bool


def run_cycle(config_file: Path, changed: list[Path], phase: Phase | None = None) -> Cycle:
    """Build what is stale and reload; an error is reported, never raised: the old version keeps serving."""
    names = ", ".join(p.name for p in changed[:3]) + (f" +{len(changed) - 3}" if len(changed) > 3 else "")
    try:
        project = load_project(config_file)
        result = reload_stack(project, build=True, phase=phase or no_progress)
    except HlocalError as exc:
        message = " ".join(line.strip() for line in exc.message.splitlines())
        return Cycle(changed, f"{names} changed → error: {message}" + (f" (hint: {exc.hint})" if exc.hint else ""),
                     ok=False)
    if not result.changed:
        return Cycle(changed, f"{names} changed → nothing to reload", ok=True)
    build = f"build {result.build_seconds:.1f} s, " if result.build_seconds else ""
    shas = ", ".join(f"{p.name} {p.sha256[:12]}" for p in _live_plugins(config_file))
    return Cycle(changed, f"{names} changed → {build}reload {result.seconds:.2f} s: "
                          f"{'; '.join(result.lines)} · live: {shas}", ok=True)


def _live_plugins(config_file: Path) -> Iterable:
    state = StackState.load(load_project(config_file).state_dir)
    return state.plugins if state else []


def watch(config_file: Path, echo: Callable[[str], None], *, stop: Callable[[], bool] = lambda: False,
          poll: float = POLL_SECONDS, debounce: float = DEBOUNCE_SECONDS,
          phase: Phase | None = None) -> None:
    """Poll file times; after a change settles for `debounce` seconds, run one cycle. Ctrl-C ends it."""
    seen = watched_files(config_file)
    echo(f"watching {len(seen)} files (hlocal.yaml and plugin sources); Ctrl-C to stop watching")
    while not stop():
        time.sleep(poll)
        now = watched_files(config_file)
        changed = changed_files(seen, now)
        if not changed:
            continue
        # Debounce: editors write in bursts; wait until the files stop moving.
        while True:
            time.sleep(debounce)
            settled = watched_files(config_file)
            if not changed_files(now, settled):
                break
            changed = sorted(set(changed) | set(changed_files(now, settled)))
            now = settled
        cycle = run_cycle(config_file, changed, phase)
        echo(cycle.line)
        seen = watched_files(config_file)  # a build writes the wasm; do not react to our own output
