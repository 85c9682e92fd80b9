"""One lock per stack: `up`, `down`, `reload` and each `watch` cycle run one at a time.

Two commands on one stack would otherwise race on ports, kill each other's processes, or write
state.json over each other. The second one waits, saying who holds the lock, and gives up with
StackBusy (exit 3) at its deadline. The lock is an flock on `.hlocal/<name>/stack.lock` (inside the
stack's own folder, like everything hlocal writes); the kernel drops it when its holder dies, so a
killed hlocal never leaves the stack locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from ..errors import StackBusy
from ..system.ownfiles import check_dir, ensure_dir

DEFAULT_WAIT_S = 120.0
POLL_S = 0.05


def lock_path(state_dir: Path) -> Path:
    return state_dir / "stack.lock"


@contextlib.contextmanager
def stack_lock(state_dir: Path, command: str, *, wait: float = DEFAULT_WAIT_S,
               echo: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
               ) -> Iterator[None]:
    """Hold the stack's lock for `command` (e.g. "up"); wait up to `wait` seconds for another holder."""
    path = lock_path(state_dir)
    if not check_dir(path.parent):
        ensure_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        end = clock() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(fd)
                if clock() >= end:
                    raise StackBusy(f"stack {state_dir.name!r} is busy: {holder} holds its lock",
                                    f"wait for it to finish, or stop it; the lock is {path}") from None
                if echo and not told:
                    echo(f"waiting for {holder} to finish with stack {state_dir.name!r} …")
                    told = True
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def _holder(fd: int) -> str:
    try:
        doc = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"`hlocal {doc['command']}` (pid {doc['pid']})"
    except (ValueError, KeyError, OSError, TypeError):
        return "another hlocal command"
