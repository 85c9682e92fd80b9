"""Adapted modules cached by content, so a module already adapted costs nothing on the next up/reload."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from ...settings import ENV_CACHE, settings

log = logging.getLogger("hlocal.adapt")


def cache_dir() -> Path:
    """$HLOCAL_CACHE_DIR, else $XDG_CACHE_HOME/hlocal, else ~/.cache/hlocal; plus /adapted."""
    return settings().cache_dir / "adapted"


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
