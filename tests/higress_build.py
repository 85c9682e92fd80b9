"""Build Higress's own plugins (official extensions and MCP servers) offline from Higress's source.

The source is a tarball of ``plugins/wasm-go/`` named by ``HLOCAL_TEST_HIGRESS_SRC`` (``.ci/run`` points
it at ``../shared/higress-src/higress-wasm-go-src.tgz``); the modules they need come from the module
proxy of ``HLOCAL_TEST_GOPROXY`` (see ``sdk_build``). The tarball is unpacked once into
``tests/.cache/higress-src``; builds land in ``tests/.cache/higress-plugins`` as
``<name>-<key>.wasm``, the key hashing the toolchain and every file the build reads (the plugin's
folder and ``pkg/``), so a second session reuses them. Nothing of it is ever committed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

from plugin_build import PluginBuildError, _go_version, find_go
from sdk_build import CACHE, goproxy_unavailable, sdk_build_env, unpack_once

HIGRESS_SRC_ENV = "HLOCAL_TEST_HIGRESS_SRC"
BUILD_TIMEOUT_S = 900.0  # a 20 MB MCP server compiles for tens of seconds cold on 2 cores


def higress_src_unavailable() -> str | None:
    """Why official plugins cannot be built here, or None."""
    tarball = os.environ.get(HIGRESS_SRC_ENV)
    if not tarball:
        return (f"{HIGRESS_SRC_ENV} is not set: official plugins are built from Higress's source "
                f"(.ci/run sets it to ../shared/higress-src/higress-wasm-go-src.tgz)")
    if not Path(tarball).is_file():
        return f"{HIGRESS_SRC_ENV}={tarball} is not a file"
    return goproxy_unavailable()


def higress_src_dir() -> Path:
    """``plugins/wasm-go`` of the unpacked source."""
    why = higress_src_unavailable()
    if why:
        raise PluginBuildError(why)
    return unpack_once(Path(os.environ[HIGRESS_SRC_ENV]), "higress-src", "plugins/wasm-go") / "plugins" / "wasm-go"


def _source_files(root: Path, folder: Path) -> list[Path]:
    files = [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".go", ".mod")]
    files += [p for p in (root / "pkg").rglob("*") if p.is_file() and p.suffix in (".go", ".mod")]
    return sorted(p for p in files if not p.name.endswith("_test.go"))


def build_higress_plugin(path: str, timeout: float = BUILD_TIMEOUT_S) -> Path:
    """Return Higress's ``plugins/wasm-go/<path>`` (e.g. ``extensions/transformer``,
    ``mcp-servers/amap-tools``) built for wasip1, building it if needed."""
    go = find_go()
    root = higress_src_dir()
    folder = root / path
    if not (folder / "go.mod").is_file():
        raise PluginBuildError(f"no Higress plugin at plugins/wasm-go/{path} (no go.mod)")
    out_dir = CACHE / "higress-plugins"
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(_go_version(go).encode())
    for file in _source_files(root, folder):
        digest.update(b"\0" + file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    name = path.rstrip("/").replace("/", "-")
    target = out_dir / f"{name}-{digest.hexdigest()[:16]}.wasm"
    if target.is_file():
        return target
    with open(out_dir / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():
            return target
        tmp = out_dir / f".{target.stem}.{os.getpid()}.tmp"
        argv = [str(go), "build", "-trimpath", "-buildmode=c-shared", "-o", str(tmp), "."]
        (folder / "go.sum").unlink(missing_ok=True)  # the proxy's content is not byte-identical to every tag
        try:
            proc = subprocess.run(argv, cwd=folder, env=sdk_build_env(), capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            tmp.unlink(missing_ok=True)
            raise PluginBuildError(f"building Higress plugin {path} took longer than {timeout:.0f}s", argv) from exc
        if proc.returncode != 0 or not tmp.is_file():
            tmp.unlink(missing_ok=True)
            raise PluginBuildError(f"building Higress plugin {path} failed (exit {proc.returncode}):\n"
                                   f"{proc.stderr.strip()}", argv, proc.returncode, proc.stdout, proc.stderr)
        os.replace(tmp, target)
    return target
