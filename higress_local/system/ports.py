"""Loopback port helpers: pick a free one, check one is free, name who holds it."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

from ..errors import EnvironmentProblem, PortInUse


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, 0))
        except OSError as exc:
            raise bind_problem(0, "a free port", host, exc) from None
        return sock.getsockname()[1]


def bind_error(port: int, host: str = "127.0.0.1") -> OSError | None:
    """Why `port` cannot be bound on `host` right now, or None when it can."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT reads as taken although Envoy could bind it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc
        return None


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    return bind_error(port, host) is None


def ensure_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    """Raise PortInUse (naming the holder when /proc tells) unless the port can be bound;
    a port refused for another reason (permission, address) is reported as that reason."""
    error = bind_error(port, host)
    if error is None:
        return
    if error.errno == errno.EADDRINUSE:
        raise PortInUse(port, what, port_owner(port) or "")
    raise bind_problem(port, what, host, error)


def bind_problem(port: int, what: str, host: str, error: OSError) -> EnvironmentProblem:
    """A bind failure other than "in use", said as what it is."""
    if error.errno in (errno.EACCES, errno.EPERM):
        start = _unprivileged_start()
        why = f" (ports below {start} need root or CAP_NET_BIND_SERVICE)" if 0 < port < start else ""
        return EnvironmentProblem(f"port {port} ({what}) cannot be bound on {host}: permission denied{why}",
                                  f"use a port of {max(start, 1024)} or above in hlocal.yaml, or 0 to pick a free one")
    if error.errno == errno.EADDRNOTAVAIL:
        return EnvironmentProblem(
            f"cannot bind {host}:{port} ({what}): the address is not available on this machine",
            f"check that the loopback interface is up and has {host} (`ip addr show lo`)",
        )
    return EnvironmentProblem(f"cannot bind {host}:{port} ({what}): {error.strerror or error}",
                              "use another port in hlocal.yaml, or 0 to pick a free one")


def _unprivileged_start() -> int:
    """The first port an unprivileged process may bind (Linux sysctl; 1024 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip())
    except (OSError, ValueError):
        return 1024


def resolve(port: int, what: str, host: str = "127.0.0.1") -> int:
    """0 becomes a free port; any other port must be free."""
    if port == 0:
        return free_port(host)
    ensure_free(port, what, host)
    return port


def port_owner(port: int) -> str | None:
    """'pid 4242 (envoy)' for the process listening on a TCP port, when /proc shows it."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                inodes.add(inode)
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    name = (proc / "comm").read_text().strip()
                    return f"pid {proc.name} ({name})"
        except OSError:
            continue
    return None
