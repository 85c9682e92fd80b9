"""The one source of the command lines hlocal runs: Envoy, the mock, redis-server, the supervisor.

The native runtime, the compose file and `hlocal render` all take their argv from here, so a
flag added for one reaches every way of running a stack.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from ..config.models import Gateway

# Inside a container the mock package is mounted under this name (render/compose.py mounts it).
CONTAINER_MOCK_MODULE = "hlocal_mock"
NATIVE_MOCK_MODULE = "higress_local.mock"
SUPERVISOR_MODULE = "higress_local.system.supervise"
AGENT_MODULE = "higress_local.runtime.agent"


def envoy_args(bootstrap: str, gateway: Gateway, capture: bool) -> list[str]:
    """Envoy's flags after the binary: the bootstrap, log levels, a short drain for quick stops.
    `capture`: the inspector's taps are rendered (natively always: gateway.inspect only switches them)."""
    args = ["-c", bootstrap, "--disable-hot-restart",
            "--log-level", gateway.log_level, "--component-log-level", f"wasm:{gateway.wasm_log_level}",
            "--drain-time-s", "1", "--parent-shutdown-time-s", "2"]
    if capture:  # the inspector reads the access log per request: flush it promptly
        args += ["--file-flush-interval-msec", "100"]
    return args


@dataclass(frozen=True)
class MockLine:
    """How one mock (the backend or a service mock) is started."""

    name: str
    port: int
    control_port: int
    config: str
    host: str = "127.0.0.1"
    token_file: str | None = None

    def args(self) -> list[str]:
        out = ["--name", self.name, "--host", self.host, "--port", str(self.port),
               "--control-port", str(self.control_port), "--config", self.config]
        if self.token_file:
            out += ["--token-file", self.token_file]
        return out

    def native(self) -> list[str]:
        return [sys.executable, "-m", NATIVE_MOCK_MODULE, *self.args()]

    def container(self) -> list[str]:
        return ["python3", "-m", CONTAINER_MOCK_MODULE, *self.args()]


def redis_args(port: int, bind: str) -> list[str]:
    """redis-server's flags: no persistence (a stack starts empty), bound where the gateway reaches it."""
    args = ["--port", str(port), "--bind", bind, "--save", "", "--appendonly", "no"]
    if bind != "127.0.0.1":
        args += ["--protected-mode", "no"]  # a container's network is private to the stack
    return args


def supervised(status_file: str, argv: list[str]) -> list[str]:
    """`argv` under hlocal's supervisor, which records its exit status in `status_file`."""
    return [sys.executable, "-m", SUPERVISOR_MODULE, status_file, "--", *argv]


def agent_args(state_dir: str) -> list[str]:
    """The stack's reload agent (runtime/agent.py), started by `up` and by a reload that finds none."""
    return [sys.executable, "-m", AGENT_MODULE, state_dir]
