"""Build test plugins written with the real Higress wasm-go SDK, offline, from a file-based Go module proxy.

The proxy is a tarball named by ``HLOCAL_TEST_GOPROXY`` (``.ci/run`` points it at the shared one).
It is unpacked once into ``tests/.cache/goproxy-tree``; builds share ``GOCACHE``/``GOMODCACHE`` under
``tests/.cache`` and land in ``tests/.cache/sdk-plugins`` as ``<name>-<key>.wasm`` (the key hashes
the toolchain version and every file of the plugin's folder), so a second session reuses them.

Plugins live in ``tests/sdk_plugins/<name>/`` (each its own Go module requiring the SDK).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tarfile
from pathlib import Path

from plugin_build import PluginBuildError, _go_version, find_go

TESTS = Path(__file__).resolve().parent
SDK_PLUGINS_DIR = TESTS / "sdk_plugins"
CACHE = TESTS / ".cache"
GOPROXY_ENV = "HLOCAL_TEST_GOPROXY"
BUILD_TIMEOUT_S = 600.0

# Versions served exactly by the shared proxy (see its README); scaffolds pin the same ones.
WASM_GO_VERSION = "v1.1.1"
PROXY_WASM_GO_SDK_VERSION = "v0.0.0-20251103120604-77e9cce339d2"


def goproxy_unavailable() -> str | None:
    """Why SDK plugins cannot be built here, or None."""
    tarball = os.environ.get(GOPROXY_ENV)
    if not tarball:
        return (f"{GOPROXY_ENV} is not set: SDK plugins need a Go module proxy "
                f"(.ci/run sets it to ../shared/goproxy/goproxy.tar.gz)")
    if not Path(tarball).is_file():
        return f"{GOPROXY_ENV}={tarball} is not a file"
    return None


def unpack_once(tarball: Path, name: str, inner: str) -> Path:
    """``tests/.cache/<name>``: the tarball unpacked once (again when it changes), under a lock; it must
    hold the folder ``inner``."""
    stamp_text = f"{tarball.resolve()} {tarball.stat().st_size} {tarball.stat().st_mtime_ns}"
    target = CACHE / name
    stamp = target / ".unpacked"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (stamp.is_file() and stamp.read_text() == stamp_text):
            tmp = CACHE / f".{name}.{os.getpid()}"
            tmp.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp, filter="data")
            if not (tmp / inner).is_dir():
                raise PluginBuildError(f"{tarball} has no {inner}/ folder")
            if target.exists():
                subprocess.run(["rm", "-rf", str(target)], check=True)
            os.replace(tmp, target)
            stamp.write_text(stamp_text)
    return target


def goproxy_dir() -> Path:
    """The unpacked proxy (``file://`` GOPROXY root)."""
    why = goproxy_unavailable()
    if why:
        raise PluginBuildError(why)
    return unpack_once(Path(os.environ[GOPROXY_ENV]), "goproxy-tree", "goproxy") / "goproxy"


def sdk_build_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an offline SDK build (also what `hlocal build` gets in tests)."""
    env = dict(os.environ)
    env.update(
        GOPROXY=f"file://{goproxy_dir()}", GOSUMDB="off", GOFLAGS="-mod=mod", GOTOOLCHAIN="local",
        GOWORK="off", GOCACHE=str(CACHE / "gocache"), GOMODCACHE=str(CACHE / "gomodcache"),
        GOOS="wasip1", GOARCH="wasm",
    )
    env.update(extra or {})
    return env


def _plugin_files(name: str) -> list[Path]:
    folder = SDK_PLUGINS_DIR / name
    if not (folder / "go.mod").is_file():
        raise PluginBuildError(f"unknown SDK test plugin {name!r}: no {folder / 'go.mod'}")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".go", ".mod"))


def build_sdk_plugin(name: str, out_dir: Path | None = None, timeout: float = BUILD_TIMEOUT_S) -> Path:
    """Return ``tests/sdk_plugins/<name>`` built for wasip1 with the SDK, building it if needed."""
    go = find_go()
    out_dir = Path(out_dir or CACHE / "sdk-plugins")
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(_go_version(go).encode())
    for path in _plugin_files(name):
        digest.update(b"\0" + path.relative_to(SDK_PLUGINS_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    target = out_dir / f"{name}-{digest.hexdigest()[:16]}.wasm"
    if target.is_file():
        return target
    tmp = out_dir / f".{target.stem}.{os.getpid()}.tmp"
    argv = [str(go), "build", "-trimpath", "-buildmode=c-shared", "-o", str(tmp), "."]
    # go.sum is not kept: the proxy's content is not byte-identical to every real tag (GOSUMDB=off).
    try:
        proc = subprocess.run(argv, cwd=SDK_PLUGINS_DIR / name, env=sdk_build_env(), capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        tmp.unlink(missing_ok=True)
        raise PluginBuildError(f"building SDK test plugin {name!r} took longer than {timeout:.0f}s", argv) from exc
    (SDK_PLUGINS_DIR / name / "go.sum").unlink(missing_ok=True)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise PluginBuildError(f"building SDK test plugin {name!r} failed (exit {proc.returncode}):\n"
                               f"{proc.stderr.strip()}", argv, proc.returncode, proc.stdout, proc.stderr)
    os.replace(tmp, target)
    return target
