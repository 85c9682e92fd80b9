"""Starting, finding and stopping a stack's reload agent (agent.py), for `up`, `reload` and `down`."""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import agentwire
from .agentwire import AGENT_MARKER
from .commands import agent_args
from .proc import spawn
from .safefs import ensure_dir

STOP_WAIT_S = 5.0
PING_TIMEOUT_S = 1.0


def ping(state_dir: Path, timeout: float = PING_TIMEOUT_S) -> int | None:
    """The pid of the agent answering on this stack's socket, or None."""
    try:
        sock = agentwire.connect(agentwire.socket_path(str(state_dir)), timeout)
    except OSError:
        return None
    try:
        agentwire.send(sock, {"op": "ping"})
        answer = agentwire.receive(sock)
    except OSError:
        return None
    finally:
        sock.close()
    return answer.get("pid")


def ensure_agent(state_dir: Path) -> int | None:
    """Start the stack's agent unless one answers (or HLOCAL_NO_AGENT is set); do not wait for it."""
    if agentwire.disabled() or not (state_dir / "state.json").exists():
        return None
    if ping(state_dir) is not None:
        return None
    ensure_dir(state_dir / agentwire.RUN_DIR)
    env = {k: v for k, v in os.environ.items() if k not in ("HLOCAL_STACK", "HLOCAL_COMPONENT")}
    env[AGENT_MARKER] = str(Path(os.path.abspath(state_dir)))
    proc = spawn(agent_args(str(state_dir)), log_file=state_dir / "logs" / "agent.log", env=env, cwd=Path("/"))
    return proc.pid


def stop_agent(state_dir: Path, grace: float = STOP_WAIT_S) -> bool:
    """Ask the stack's agent to leave, then stop any other process marked as its agent (one still
    starting, one that does not answer). True: there was one."""
    stopped = _ask_to_leave(state_dir, grace)
    return _kill_leftovers(state_dir, grace) or stopped


def _ask_to_leave(state_dir: Path, grace: float) -> bool:
    path = agentwire.socket_path(str(state_dir))
    if not os.path.lexists(path):
        return False
    try:
        sock = agentwire.connect(path, grace)
    except OSError:
        unlink_quietly(path)  # a socket nobody listens on: the agent died without cleaning up
        return False
    try:
        agentwire.send(sock, {"op": "stop"})
        pid = agentwire.receive(sock).get("bye")  # it serves nothing more
        sock.settimeout(grace)
        while sock.recv(1):  # EOF: its socket is gone, it is on its way out
            pass
    except OSError:
        return False
    finally:
        sock.close()
    if isinstance(pid, int):
        _wait_gone(pid, grace)
    return True


def _wait_gone(pid: int, timeout: float) -> None:
    """Until the process has exited (or is a zombie its parent reaps); _kill_leftovers does the rest.

    Not wait.Deadline: this runs while stopping a stack after Ctrl-C, and must not raise it again.
    """
    end = time.monotonic() + timeout
    while os.path.exists(f"/proc/{pid}") and not _zombie(str(pid)) and time.monotonic() < end:
        time.sleep(0.01)


def _kill_leftovers(state_dir: Path, grace: float) -> bool:
    """Agents of this stack found by their marker (psutil only when there is one: rare)."""
    pids = agent_pids(state_dir)
    if not pids:
        return False
    import psutil

    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
            procs[-1].terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=grace)
    return True


def agent_pids(state_dir: Path) -> list[int]:
    """Live agent processes of this user serving `state_dir` (by the marker in their environment)."""
    wanted = str(Path(os.path.abspath(state_dir))).encode()
    needle = AGENT_MARKER.encode() + b"=" + wanted
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0") and not _zombie(entry):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _zombie(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return True


def unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
