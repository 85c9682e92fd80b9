"""Reading and following log files; picking out the plugins' own lines."""

from __future__ import annotations

import re
import time
from collections import deque
from pathlib import Path
from typing import Callable, Iterable, Iterator

# Envoy prints what a plugin logs as "wasm log <plugin> <root_id> <vm_id>: <message>".
PLUGIN_LINE = re.compile(r"wasm log (?P<plugin>[^\s:]+)(?: [^\s:]*)?(?: [^\s:]*)?: (?P<message>.*)$")


def is_plugin_line(line: str) -> bool:
    """A line a plugin logged (not one of hlocal's own property bridge)."""
    match = PLUGIN_LINE.search(line)
    return match is not None and match.group("plugin") != "hlocal.bridge"


def plugin_lines(lines: Iterable[str]) -> list[str]:
    return [line for line in lines if is_plugin_line(line)]


def read_lines(path: Path, start: int = 0) -> tuple[list[str], int]:
    """Lines from byte offset `start`; returns them and the offset after the last full line."""
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    text = data[:end].decode("utf-8", errors="replace")
    return text.splitlines(), start + end


def follow_files(
    files: dict[str, Path], *, plugin_only: bool, follow: bool, tail: int | None, prefix: bool,
    poll: float = 0.2, stop: Callable[[], bool] | None = None,
) -> Iterator[str]:
    """Yield existing lines (optionally the last N), then new ones while `follow`."""
    offsets: dict[str, int] = {}
    backlog: list[str] = []
    for name, path in files.items():
        lines, offsets[name] = read_lines(path)
        if plugin_only:
            lines = plugin_lines(lines)
        backlog.extend(_label(name, line, prefix) for line in lines)
    if tail is not None:
        backlog = list(deque(backlog, maxlen=tail)) if tail > 0 else []
    yield from backlog
    while follow and not (stop and stop()):
        fresh = False
        for name, path in files.items():
            lines, offsets[name] = read_lines(path, offsets[name])
            for line in plugin_lines(lines) if plugin_only else lines:
                fresh = True
                yield _label(name, line, prefix)
        if not fresh:
            time.sleep(poll)


def _label(name: str, line: str, prefix: bool) -> str:
    return f"{name:<8}| {line}" if prefix else line
