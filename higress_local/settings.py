"""hlocal's settings from the environment (`HLOCAL_*`), read once at first use, and the defaults they share.

Model: httpie's `Environment`, one object the code asks instead of `os.environ`. Tests that change
the environment call `reset()` (tests/conftest.py does before and after every test) or replace the
settings with `override(...)`. Read elsewhere, on purpose: `HLOCAL_NO_AGENT` in `agent/wire.py` (the
entry point imports only built-in modules), `HLOCAL_UP_TIMEOUT` by Click for `--timeout` (`envvar=`),
the markers of `system/orphans.py` (set on children, read from /proc), and nothing in `mock/`.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from .errors import ConfigError

CONFIG_NAMES = ("hlocal.yaml", "hlocal.yml")
RUNTIME_NAMES = ("native", "docker")
RUNTIMES = ("auto", *RUNTIME_NAMES)  # what `runtime:` and --runtime accept
FLAVORS = ("envoy", "higress")
DEFAULT_WASM_LOG_LEVEL = "debug"  # gateway.wasm_log_level
UP_TIMEOUT_S = 60.0  # seconds `up` (and reload) wait for ready

ENV_CACHE = "HLOCAL_CACHE_DIR"
ENV_ENVOY = "HLOCAL_ENVOY"
ENV_UP_TIMEOUT = "HLOCAL_UP_TIMEOUT"
ENV_HIGRESS_IMAGE = "HLOCAL_HIGRESS_IMAGE"
ENV_ENVOY_IMAGE = "HLOCAL_ENVOY_IMAGE"
ENV_BACKEND_IMAGE = "HLOCAL_BACKEND_IMAGE"
ENV_REDIS_IMAGE = "HLOCAL_REDIS_IMAGE"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Each field: its variable's value, None (or the default) when unset or empty."""

    cache_dir: Path  # $HLOCAL_CACHE_DIR, else $XDG_CACHE_HOME/hlocal, else ~/.cache/hlocal
    envoy: str | None = None
    up_timeout_text: str | None = None  # parsed on use (`up_timeout`): a bad value fails only where it counts
    higress_image: str | None = None
    envoy_image: str | None = None
    backend_image: str | None = None
    redis_image: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        home_cache = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return cls(cache_dir=Path(environ.get(ENV_CACHE) or os.path.join(home_cache, "hlocal")),
                   envoy=environ.get(ENV_ENVOY) or None,
                   up_timeout_text=environ.get(ENV_UP_TIMEOUT) or None,
                   higress_image=environ.get(ENV_HIGRESS_IMAGE) or None,
                   envoy_image=environ.get(ENV_ENVOY_IMAGE) or None,
                   backend_image=environ.get(ENV_BACKEND_IMAGE) or None,
                   redis_image=environ.get(ENV_REDIS_IMAGE) or None)

    @property
    def up_timeout(self) -> float:
        if self.up_timeout_text is None:
            return UP_TIMEOUT_S
        try:
            return float(self.up_timeout_text)
        except ValueError:
            raise ConfigError(f"{ENV_UP_TIMEOUT}={self.up_timeout_text!r} is not a number of seconds",
                              f"set it to seconds, e.g. {ENV_UP_TIMEOUT}=120, or unset it") from None


_current: Settings | None = None


def settings() -> Settings:
    """The settings, read from the environment at the first call."""
    global _current
    if _current is None:
        _current = Settings.from_environ(os.environ)
    return _current


def reset() -> None:
    """Forget the settings read: the next `settings()` reads the environment again."""
    global _current
    _current = None


@contextmanager
def override(**changes: object) -> Iterator[Settings]:
    """Within the block, `settings()` is the current settings with `changes` (field names) applied."""
    global _current
    before = _current
    _current = dataclasses.replace(settings(), **changes)
    try:
        yield _current
    finally:
        _current = before
