"""The one place hlocal runs external programs and manages process groups."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from ..errors import CommandFailed, EnvironmentProblem
from .ownfiles import fresh_log

log = logging.getLogger("hlocal.proc")


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    check: bool = True,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a program to completion and capture its output; argv only, never a shell."""
    argv = [str(a) for a in argv]
    log.debug("run: %s", shlex.join(argv))
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=dict(env) if env is not None else None, timeout=timeout,
            capture_output=True, text=True, input=input, check=False,
        )
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"program not found: {argv[0]}", "install it or put it on PATH") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(argv, -1, _text(exc.stdout), _text(exc.stderr), f"it did not finish within {timeout:g} s") from exc
    if check and done.returncode != 0:
        raise CommandFailed(argv, done.returncode, done.stdout, done.stderr)
    return done


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout_pipe: bool = False,
    private: bool = True,
) -> subprocess.Popen:
    """Start a long-running program in its own session (process group), output to a fresh log file.

    The log is created anew without following a link at its path, readable by the user only
    (`private`): logs hold request headers. The program's own files get the same umask.
    """
    argv = [str(a) for a in argv]
    log.debug("spawn: %s (log: %s)", shlex.join(argv), log_file)
    out = fresh_log(log_file)
    try:
        return subprocess.Popen(
            argv, cwd=cwd, env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else out,
            stderr=out,
            start_new_session=True,
            umask=0o077 if private else -1,
        )
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"program not found: {argv[0]}", "install it or put it on PATH") from exc
    finally:
        os.close(out)


def own_pythonpath(environ: Mapping[str, str] | None = None) -> str:
    """PYTHONPATH for a child Python of hlocal's (agent, supervisor, mock): this very `higress_local` first.

    Such children start in another folder (the agent in /), where a plain `python -m higress_local...`
    would import whichever copy the interpreter finds (an installed one) instead of the caller's checkout.
    """
    root = str(Path(__file__).resolve().parents[2])
    existing = (os.environ if environ is None else environ).get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root


def run_foreground(argv: Sequence[str], *, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run a program on this terminal (its output goes straight to the user); return its exit code."""
    argv = [str(a) for a in argv]
    log.debug("run: %s", shlex.join(argv))
    try:
        return subprocess.run(argv, cwd=cwd, env=dict(env) if env is not None else None, check=False).returncode
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"program not found: {argv[0]}", "install it or put it on PATH") from exc


def stream(argv: Sequence[str], *, cwd: Path | None = None) -> Iterator[str]:
    """Run a program and yield its output lines as they come (stderr merged); raise on failure."""
    argv = [str(a) for a in argv]
    log.debug("stream: %s", shlex.join(argv))
    try:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", stdin=subprocess.DEVNULL)
    except FileNotFoundError as exc:
        raise EnvironmentProblem(f"program not found: {argv[0]}", "install it or put it on PATH") from exc
    tail: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail = (tail + [line])[-5:]
            yield line
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait()
    if proc.returncode not in (0, -signal.SIGTERM):
        raise CommandFailed(argv, proc.returncode, "", "\n".join(tail))


@dataclass(frozen=True)
class ProcessRecord:
    """Enough to find a process again from another shell and be sure it is still ours."""

    pid: int
    start_ticks: int  # /proc/<pid>/stat start time: guards against a recycled pid

    @classmethod
    def of(cls, pid: int) -> "ProcessRecord":
        return cls(pid=pid, start_ticks=start_ticks(pid) or 0)

    def alive(self) -> bool:
        ticks = start_ticks(self.pid)
        return ticks is not None and ticks == self.start_ticks and not _is_zombie(self.pid)


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(")") + 2:].split()
    return int(fields[19])


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].split()[0] in ("Z", "X")


def stop_group(record: ProcessRecord, *, grace: float = 5.0) -> bool:
    """Terminate a process group politely, then kill it; True if something was running."""
    if not record.alive():
        reap_child(record.pid)
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(record.pid, sig)
        except ProcessLookupError:
            break
        except PermissionError:
            os.kill(record.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            reap_child(record.pid)
            if not record.alive() and not _group_exists(record.pid):
                return True
            time.sleep(0.02)
    reap_child(record.pid)
    return True


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # Zombie members still count for killpg; treat a group of zombies as gone.
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def reap_child(pid: int) -> None:
    """Collect the exit status of a child of ours so it does not linger as a zombie (no-op for others)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
