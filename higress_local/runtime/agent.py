"""The reload agent: one warm process per started stack that runs `hlocal reload` for the entry point.

`hlocal up` starts it (`python -m higress_local.runtime.agent STATE_DIR`); `down` stops it. It imports the
config, render and reload code once, then listens on .hlocal/<name>/run/agent.sock for requests from
entry.py. A request is served only when the agent would do exactly what the CLI does: same hlocal
(package folder and unchanged source files), same HLOCAL_*/DOCKER_* settings, this stack, nothing to build,
nothing that needs a restart. Otherwise it answers "fallback" before touching anything and the CLI
runs. It reads hlocal.yaml with the caller's environment (${VAR}) from the caller's folder, takes
the stack lock like any command, and a signal the caller gets (Ctrl-C, SIGTERM) is forwarded here,
so an interrupted swap rolls back the same way.

The agent leaves on `stop`, on SIGTERM, when the stack's state is gone, or when hlocal's own files
change under it (an upgrade or an edit: the next reload is the CLI's, which starts a fresh agent).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

from ..agent import wire as agentwire
from ..wasm.gobuild import needs_build
from ..config.project import load_project
from ..errors import HlocalError, Stopped, outcome_of
from . import check_running
from .lock import stack_lock
from .reload import reload_running, restart_reasons
from ..system.orphans import AGENT_MARKER, COMPONENT_MARKER, STACK_MARKER
from ..state import StackState
from ..system.wait import clear_interrupt, install_interrupt_flag
from . import docker, files, lock, native, redeliver, stage
from ..render import envoy
from ..system import readiness

log = logging.getLogger("hlocal.agent")

IDLE_CHECK_S = 2.0  # how often an idle agent checks that its stack still exists
REQUEST_READ_TIMEOUT_S = 5.0
# Settings that change what a reload does: hlocal's own, and which Docker engine the docker runtime
# asks (DOCKER_HOST, DOCKER_CONTEXT, ...). The markers only tell processes apart.
_SETTING_PREFIXES = ("HLOCAL_", "DOCKER_")
_IGNORED_SETTINGS = {AGENT_MARKER, STACK_MARKER, COMPONENT_MARKER, agentwire.NO_AGENT_ENV}


def _settings(environ: dict) -> dict:
    return {k: v for k, v in environ.items() if k.startswith(_SETTING_PREFIXES) and k not in _IGNORED_SETTINGS}


# -- the agent process -------------------------------------------------------------------------

class _Cancel:
    """A stop signal the caller forwarded, delivered to the main thread while (only while) it reloads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = False
        self.forwarded = False

    def deliver(self, signum: int) -> None:
        with self.lock:
            if self.active and signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                self.forwarded = True
                signal.pthread_kill(threading.main_thread().ident, signum)


class Agent:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        # The package folder, as entry.py sends it (this module sits in its runtime/ subpackage).
        self.package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.settings = _settings(dict(os.environ))
        self.sources = self._source_times()
        self.stopping = False
        self.farewell: socket.socket | None = None  # the `stop` caller's connection, closed once we are gone
        self.cancel = _Cancel()

    @staticmethod
    def _source_times() -> dict[str, int]:
        times = {}
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if name.startswith("higress_local") and file:
                try:
                    times[file] = os.stat(file).st_mtime_ns
                except OSError:
                    times[file] = -1
        return times

    def stale(self) -> bool:
        """hlocal's own code changed since the agent started (an upgrade, an edit in a checkout)."""
        for file, mtime in self.sources.items():
            try:
                if os.stat(file).st_mtime_ns != mtime:
                    return True
            except OSError:
                return True
        return False

    # -- serving -------------------------------------------------------------------------------
    def serve(self) -> None:
        path = agentwire.socket_path(str(self.state_dir))
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        temporary = Path(f"{path}.{os.getpid()}")
        temporary.unlink(missing_ok=True)
        old_mask = os.umask(0o177)  # the socket file: 0600
        try:
            agentwire.bind(sock, str(temporary))
        finally:
            os.umask(old_mask)
        sock.listen(8)
        os.replace(temporary, path)  # clients see the socket only once it accepts
        mine = os.lstat(path).st_ino
        log.info("agent %d serving %s", os.getpid(), self.state_dir)
        try:
            while not self.stopping:
                sock.settimeout(IDLE_CHECK_S)
                try:
                    conn, _ = sock.accept()
                except TimeoutError:
                    self.stopping = self._should_leave()
                    continue
                try:
                    self._handle(conn)
                finally:
                    if conn is not self.farewell:
                        _close(conn)
        finally:
            sock.close()
            try:
                if os.lstat(path).st_ino == mine:  # never remove a newer agent's socket
                    os.unlink(path)
            except OSError:
                pass
            log.info("agent %d leaves", os.getpid())
            if self.farewell is not None:
                _close(self.farewell)

    def _should_leave(self) -> bool:
        if not (self.state_dir / "state.json").exists():
            log.info("the stack's state is gone")
            return True
        if self.stale():
            log.info("hlocal's source files changed")
            return True
        return False

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(REQUEST_READ_TIMEOUT_S)
        try:
            uid = _peer_uid(conn)
            if uid is not None and uid != os.geteuid():
                log.warning("refused a connection from uid %d", uid)
                return
            request = agentwire.receive(conn)
            op = request.get("op")
            if op == "ping":
                agentwire.send(conn, {"pid": os.getpid()})
            elif op == "stop":
                self.stopping, self.farewell = True, conn
                agentwire.send(conn, {"bye": os.getpid()})
            elif op == "reload":
                agentwire.send(conn, self._reload(conn, request))
        except OSError as exc:  # the caller went away; nothing of ours is half-done here
            log.info("connection dropped: %s", exc)

    def _reload(self, conn: socket.socket, request: dict) -> dict:
        started = time.monotonic()
        why = self._decline(request)
        if why:
            log.info("declined: %s", why)
            return {"fallback": why}
        reader = threading.Thread(target=self._read_signals, args=(conn,), daemon=True)
        cwd = request["cwd"]
        try:
            os.chdir(cwd)
            with self.cancel.lock:
                self.cancel.active, self.cancel.forwarded = True, False
            conn.settimeout(None)
            reader.start()
            answer = self._run_reload(request)
        except OSError as exc:
            answer = {"fallback": f"cannot serve from {cwd}: {exc}"}
        finally:
            with self.cancel.lock:
                self.cancel.active = False
                forwarded = self.cancel.forwarded
            clear_interrupt()
            os.chdir("/")
        if "note" in answer and not forwarded:
            self.stopping = True  # stopped by a signal of our own (`down`): leave after answering
        if "fallback" in answer:
            log.info("reload declined in %.3f s: %s", time.monotonic() - started, answer["fallback"])
        else:
            log.info("reload served in %.3f s (exit %s)", time.monotonic() - started, answer["exit"])
        return answer

    def _decline(self, request: dict) -> str | None:
        """Why this request is not the agent's to serve (None: it is)."""
        if not _same_path(request.get("package"), self.package):
            return f"another hlocal ({request.get('package')})"
        if self.stale():
            self.stopping = True
            return "hlocal's source files changed since the agent started"
        if _settings(request.get("env") or {}) != self.settings:
            return "other HLOCAL_*/DOCKER_* settings than the agent's"
        return None

    def _read_signals(self, conn: socket.socket) -> None:
        """Forwarded signals, until the connection closes (the answer was sent)."""
        while True:
            try:
                message = agentwire.receive(conn)
            except OSError:
                return
            signum = message.get("signal")
            if isinstance(signum, int):
                self.cancel.deliver(signum)

    def _run_reload(self, request: dict) -> dict:
        try:
            try:
                project = load_project(request["file"], Path(request["cwd"]), name=request["name"],
                                       env=request["env"])
            except HlocalError:
                return {"fallback": "the CLI reports a config error itself"}
            if project.state_dir.resolve() != self.state_dir.resolve():
                return {"fallback": f"another stack ({project.state_dir})"}
            # The state is read once, under the lock, and the reload runs from what was read.
            with stack_lock(project.state_dir, "reload", wait=request["timeout"]):
                state = StackState.load_or_none(project.state_dir)
                if state is None or restart_reasons(project, state):
                    return {"fallback": "not running, or the change needs a restart"}
                names = tuple(request["plugins"])
                if request["build"] and any(needs_build(p) for p in project.plugins if not names or p.name in names):
                    return {"fallback": "a plugin needs a build"}
                result = reload_running(check_running(project, state), names=names, build=False,
                                        timeout=request["timeout"])
        except (HlocalError, KeyboardInterrupt, Stopped) as exc:
            return outcome_of(exc)
        except Exception:  # noqa: BLE001 - the CLI then runs the same reload and shows what it does
            log.exception("reload failed in the agent")
            return {"fallback": "the agent failed; see logs/agent.log"}
        out = [] if result.changed else ["nothing changed"]
        return {"exit": 0, "out": out + result.lines}


def _same_path(sent: object, mine: str) -> bool:
    """entry.py sends its folder unresolved (it avoids the work); one reached through a link is the same."""
    return isinstance(sent, str) and (sent == mine or os.path.realpath(sent) == os.path.realpath(mine))


def _peer_uid(conn: socket.socket) -> int | None:
    """The connecting process's uid (Linux SO_PEERCRED); None elsewhere, where the 0600 socket in the
    0700 stack folder is the only guard."""
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    return struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))[1]


def _close(conn: socket.socket) -> None:
    """Shut the connection down first: that ends the signal reader's blocking read (close alone does not)."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()


def _warm_up() -> None:
    """Import everything a reload uses, so the first request is as fast as the next ones."""


def _only_agent(state_dir: Path) -> int | None:
    """An fd holding run/agent.lock, or None when another agent of this stack holds it (that one serves)."""
    import fcntl

    fd = os.open(state_dir / agentwire.RUN_DIR / "agent.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m higress_local.runtime.agent STATE_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    state_dir = Path(os.path.abspath(argv[0]))
    if _only_agent(state_dir) is None:
        log.info("another agent serves %s", state_dir)
        return 0
    _warm_up()
    # Until here SIGTERM (`down`) ends the process at once; from here on it lets a reload roll back first.
    install_interrupt_flag()
    try:
        Agent(state_dir).serve()
    except (KeyboardInterrupt, Stopped):  # a stop signal while idle: leave (serve removed the socket)
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
