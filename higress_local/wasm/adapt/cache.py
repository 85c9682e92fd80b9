"""Adapted modules cached by content, so a module already adapted costs nothing on the next up/reload."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

log = logging.getLogger("hlocal.adapt")

ENV_CACHE = "HLOCAL_CACHE_DIR"


def cache_dir() -> Path:
    """$HLOCAL_CACHE_DIR, else $XDG_CACHE_HOME/hlocal, else ~/.cache/hlocal; plus /adapted."""
    base = os.environ.get(ENV_CACHE) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "hlocal")
    return Path(base) / "adapted"


def cached(key: str, produce: Callable[[], bytes]) -> bytes:
    """The bytes stored under `key`, producing and storing them on a miss (atomically, best effort)."""
    path = cache_dir() / f"{key}.wasm"
    try:
        return path.read_bytes()
    except OSError:
        pass
    data = produce()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only or full cache only costs speed
        log.debug("cannot cache adapted module at %s: %s", path, exc)
    return data
