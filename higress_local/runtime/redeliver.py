"""Re-deliver a watched file whose change event never reached Envoy.

Envoy's ECDS `watched_directory` acts only on a rename into the directory (inotify IN_MOVED_TO;
envoyproxy/envoy source/common/config/watched_directory.cc watches Filesystem::Watcher::Events::
MovedTo). Docker Desktop's file sharing can hand a host-side rename to the container as a plain
modification, and then Envoy never even attempts the update: its `update_attempt` stat for the
filter stays where it was. Renaming the same bytes in again gives Envoy a fresh event; whether the
new version is live is still read from its `version_text` stat by the caller.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from ..system import ownfiles as safefs
from ..errors import EnvironmentProblem

AFTER_S = 1.0  # a move event reaches Envoy within milliseconds; a second without an attempt = lost
TIMES = 3  # then the file sharing is not passing renames at all: say so


class Redelivery:
    """Watches pending ECDS swaps; one whose update Envoy never attempted is renamed in again."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, after: float = AFTER_S,
                 times: int = TIMES) -> None:
        self.clock = clock
        self.after = after
        self.times = times
        self.started = clock()
        self.count: dict[str, int] = {}

    def check(self, name: str, path: Path, baseline_attempts: int, stats: dict[str, str]) -> None:
        """Call while `name`'s new version is not live yet; `stats` = its ECDS stats now."""
        if int(stats.get("update_attempt", "0")) > baseline_attempts:
            return  # Envoy saw the file: it is compiling or deciding, nothing was lost
        done = self.count.get(name, 0)
        if self.clock() - self.started < self.after * (done + 1):
            return
        if done >= self.times:
            raise EnvironmentProblem(
                f"Envoy never noticed the new configuration of {name} (re-delivered {done} times; "
                "the file sharing into the container drops rename events)",
                "run `hlocal reload --restart` (the gateway restarts and reads every file)")
        redeliver(path)
        self.count[name] = done + 1

    def lines(self) -> list[str]:
        """What to tell the user: which files were re-delivered."""
        return [f"{name}: its change event was lost; re-delivered the file ({times}x)"
                for name, times in self.count.items()]


def redeliver(path: Path) -> None:
    """Rename the file's own bytes over it again: a new IN_MOVED_TO event, the same content."""
    safefs.write_private(path, path.read_bytes())
