"""How a stack runs the relay: its command line, when it is needed, how to tell it is up.

On flavor `envoy` a plugin's Redis commands arrive as HTTP calls on the redis service's cluster
(see higress_local/wasm/adapt/shim.wat), so that cluster must point at the relay, and the relay at the
service's redis-server. On flavor `higress` the cluster points at Redis itself, as before.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..system.readiness import admin_get
from ..system.wait import NotYet

HEALTH_PATH = "/health"  # the relay's liveness (server.py serves it; kept here so wiring stays light)

RELAY_SUFFIX = "-relay"  # component name: the service's component + this


def needs_relay(flavor: str, kind: str) -> bool:
    """Stock Envoy has no Redis host functions: its redis services are reached through the relay."""
    return flavor == "envoy" and kind == "redis"


def relay_component(service_component: str) -> str:
    return service_component + RELAY_SUFFIX


def relay_argv(port: int, redis_host: str, redis_port: int, password_file: Path | None = None) -> list[str]:
    """The relay's command line (standard library only: the interpreter running hlocal will do)."""
    argv = [sys.executable, "-m", "higress_local.relay", "--port", str(port), "--redis", f"{redis_host}:{redis_port}"]
    if password_file is not None:
        argv += ["--password-file", str(password_file)]
    return argv


def relay_ready_check(name: str, port: int) -> None:
    """Raise NotYet until the relay of service `name` answers its health check on 127.0.0.1:port."""
    try:
        status = admin_get(f"http://127.0.0.1:{port}{HEALTH_PATH}").status_code
    except OSError as exc:
        raise NotYet(f"redis relay of service {name} not answering on 127.0.0.1:{port}") from exc
    if status != 200:
        raise NotYet(f"redis relay of service {name} health answered {status}")
