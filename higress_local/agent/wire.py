"""The reload agent's wire: where its socket is, and one framed message each way.

Imported by the command-line entry point before anything else, so it uses only built-in modules
(`_socket`, `marshal`, `os`, `sys`): a one-shot `hlocal reload` that the agent serves must not pay for the
imports it exists to avoid. Messages are marshal-encoded dicts of plain values behind a 4-byte length;
both ends are the same hlocal (the agent refuses another version) and the same user (the socket is
0600 in a 0700 folder, and the agent checks its peer's uid).
"""

from __future__ import annotations

import _socket
import marshal
import os
import sys

SOCKET_NAME = "agent.sock"
RUN_DIR = "run"
MAX_MESSAGE = 4 << 20  # a request carries the caller's environment; 4 MiB is far above any real one
NO_AGENT_ENV = "HLOCAL_NO_AGENT"  # set (to anything but "" or "0"): never start or use the agent
# AF_UNIX paths are limited to 108 bytes (Linux); a longer one is reached through /proc/self/fd.
_SUN_PATH_MAX = 107


class WireError(OSError):
    """The peer closed the connection or sent something that is not a message."""


def disabled(environ: dict | os._Environ | None = None) -> bool:
    value = (os.environ if environ is None else environ).get(NO_AGENT_ENV, "")
    return value not in ("", "0")


def socket_path(state_dir: str) -> str:
    return os.path.join(state_dir, RUN_DIR, SOCKET_NAME)


def _short(path: str, use) -> None:
    """Call use(address) with `path` or, when too long for AF_UNIX, the same file through a folder fd."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        use(path)
        return
    if not hasattr(os, "O_PATH") or not os.path.isdir("/proc/self/fd"):
        raise OSError(f"socket path too long for this system: {path}")  # not Linux: no agent, the CLI reloads
    folder = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        use(f"/proc/self/fd/{folder}/{os.path.basename(path)}")
    finally:
        os.close(folder)


def connect(path: str, timeout: float) -> _socket.socket:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        _short(path, sock.connect)
    except BaseException:
        sock.close()
        raise
    return sock


def bind(sock: _socket.socket, path: str) -> None:
    _short(path, sock.bind)


def send(sock: _socket.socket, message: dict) -> None:
    data = marshal.dumps(message)
    sock.sendall(len(data).to_bytes(4, "big") + data)


def _exactly(sock: _socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 16))
        if not chunk:
            raise WireError("the connection closed mid-message" if chunks or size != 4 else "the connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def print_outcome(outcome: dict) -> int:
    """Print a command's outcome ({"out": lines, "error": [message, hint], "note"}: errors.outcome_of) the
    way the CLI does, for the CLI and for a reload the agent served alike; returns its exit code."""
    for line in outcome.get("out", ()):
        print(line)
    sys.stdout.flush()
    error = outcome.get("error")
    if error:
        message, hint = error
        red = sys.stderr.isatty()  # as click.secho: colour only on a terminal
        print(f"\x1b[31merror: {message}\x1b[0m" if red else f"error: {message}", file=sys.stderr)
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
    if outcome.get("note"):
        print(outcome["note"], file=sys.stderr)
    return int(outcome.get("exit", 0))


def receive(sock: _socket.socket) -> dict:
    size = int.from_bytes(_exactly(sock, 4), "big")
    if size > MAX_MESSAGE:
        raise WireError(f"a message of {size} bytes is over the limit")
    try:
        message = marshal.loads(_exactly(sock, size))
    except (EOFError, ValueError, TypeError) as exc:
        raise WireError(f"not a message: {exc}") from exc
    if not isinstance(message, dict):
        raise WireError("not a message: not a dict")
    return message
