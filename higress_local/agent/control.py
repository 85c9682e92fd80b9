"""Starting, finding and stopping a stack's reload agent (runtime/agent.py), for `up`, `reload` and `down`."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from . import wire as agentwire
from ..render.commandlines import agent_args
from ..system.proc import own_pythonpath, spawn
from ..system.ownfiles import ensure_dir
from ..system.orphans import AGENT_MARKER, COMPONENT_MARKER, STACK_MARKER, find_marked, stack_marker, stop_marked

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
    env = {k: v for k, v in os.environ.items() if k not in (STACK_MARKER, COMPONENT_MARKER)}
    env[AGENT_MARKER] = stack_marker(state_dir)
    env["PYTHONPATH"] = own_pythonpath(env)  # it starts in /: it must import this hlocal, not an installed one
    proc = spawn(agent_args(str(state_dir)), log_file=state_dir / "logs" / "agent.log", env=env, cwd=Path("/"))
    return proc.pid


def stop_agent(state_dir: Path, grace: float = STOP_WAIT_S) -> bool:
    """Ask the stack's agent to leave, then stop any other process marked as its agent (one still
    starting, one that does not answer). True: there was one."""
    leaving = _ask_to_leave(state_dir, grace)
    if leaving is not None:  # let it finish leaving on its own before anything is signalled
        import psutil

        psutil.wait_procs([p for p in find_marked(state_dir, AGENT_MARKER) if p.pid == leaving], timeout=grace)
    return bool(stop_marked(state_dir, grace, AGENT_MARKER)) or leaving is not None


def _ask_to_leave(state_dir: Path, grace: float) -> int | None:
    """The pid of the agent that said it leaves, or None (no socket, or nobody answered on it)."""
    path = agentwire.socket_path(str(state_dir))
    if not os.path.lexists(path):
        return None
    try:
        sock = agentwire.connect(path, grace)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)  # a socket nobody listens on: the agent died without cleaning up
        return None
    try:
        agentwire.send(sock, {"op": "stop"})
        pid = agentwire.receive(sock).get("bye")  # it serves nothing more
        sock.settimeout(grace)
        while sock.recv(1):  # EOF: its socket is gone, it is on its way out
            pass
    except OSError:
        return None
    finally:
        sock.close()
    return pid if isinstance(pid, int) else None
