"""Loopback port helpers: pick a free one, check one is free, name who holds it."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from .errors import PortInUse


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Without SO_REUSEADDR a port in TIME_WAIT reads as taken although Envoy could bind it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def ensure_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    """Raise PortInUse (naming the holder when /proc tells) unless the port can be bound."""
    if not is_free(port, host):
        raise PortInUse(port, what, port_owner(port) or "")


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
