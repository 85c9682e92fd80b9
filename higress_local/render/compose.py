"""Pure rendering of the Docker Compose file for a stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .commandlines import MockLine, envoy_args
from ..config.project import Project

CONFIG_MOUNT = "/etc/hlocal"
MOCK_MOUNT = "/opt/hlocal_mock"
GATEWAY_PORT = 10000
ADMIN_PORT = 9901
BACKEND_PORT = 8080
CONTROL_PORT = 8081
TLS_PORT = 10443  # gateway.tls: the https listener inside the gateway container
LABEL = "io.hlocal.stack"

# Images differ in what they carry; bash (Debian/Ubuntu bases, the Higress and Envoy images)
# is enough to ask Envoy's admin API whether it is LIVE, without curl.
GATEWAY_HEALTH = (
    f"exec 3<>/dev/tcp/127.0.0.1/{ADMIN_PORT} && "
    "printf 'GET /ready HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 "
    "&& grep -q LIVE <&3"
)


def mock_health(control_port: int) -> str:
    """A mock's healthcheck (python3 -c): its control API answers on `control_port`."""
    return ("import urllib.request; "
            f"urllib.request.urlopen('http://127.0.0.1:{control_port}/__hlocal/health', timeout=2)")


BACKEND_HEALTH = mock_health(CONTROL_PORT)


@dataclass(frozen=True)
class ComposeService:
    """An extra upstream container: a service mock, a redis, or a user's image."""

    name: str  # the compose service name (svc-<name>)
    image: str
    aliases: tuple[str, ...]  # network names the gateway's cluster and the plugin may use
    command: tuple[str, ...] | None = None
    ports: tuple[str, ...] = ()  # published as 127.0.0.1:HOST:CONTAINER
    health: tuple[str, ...] | None = None
    mounts_config: bool = False  # a mock reads its stubs from the config directory
    labels_service: str = ""
    # A mock replica: it runs in the gateway container's network namespace (a 127.0.0.1 host of the
    # cluster, as on native), so its ports are published by the gateway and it starts after it.
    in_gateway_network: bool = False


@dataclass(frozen=True)
class ComposePlan:
    """Host-side facts the compose file needs: images, published ports, directories."""

    gateway_image: str
    backend_image: str
    gateway_port: int
    admin_port: int
    control_port: int
    config_dir: str  # host directory mounted at CONFIG_MOUNT (rendered files and modules)
    mock_dir: str  # host directory of the mock package's copy in the stack folder, mounted at MOCK_MOUNT
    extra: tuple[ComposeService, ...] = ()
    token_file: str | None = None  # the mocks' control token, relative to the config directory
    host_gateway: bool = False  # a service points at a url on the host: host.docker.internal
    tls_port: int | None = None  # gateway.tls: the https listener's host port (published from TLS_PORT)


def mock_command(name: str, config: str, token_file: str | None = None, port: int = BACKEND_PORT,
                 control_port: int = CONTROL_PORT) -> tuple[str, ...]:
    """How a container runs hlocal's mock (from the mounted module directory)."""
    line = MockLine(name=name, host="0.0.0.0", port=port, control_port=control_port,
                    config=f"{CONFIG_MOUNT}/{config}",
                    token_file=f"{CONFIG_MOUNT}/{token_file}" if token_file else None)
    return tuple(line.container())


def project_name(project: Project) -> str:
    return f"hlocal-{project.name}"


def _labels(project: Project, service: str) -> dict[str, str]:
    return {LABEL: project.name, "io.hlocal.service": service, "io.hlocal.config": str(project.file)}


def _health(test: list[str]) -> dict[str, Any]:
    # Engines before 25 have no start_interval: poll often so health follows readiness closely.
    return {"test": test, "interval": "1s", "timeout": "3s", "retries": 3, "start_period": "120s"}


def render_compose(project: Project, plan: ComposePlan) -> dict[str, Any]:
    """The compose document: gateway + mock backend on one network, ports on 127.0.0.1 only."""
    # Each service gets its own copies: shared dicts would come out as YAML anchors and aliases.
    config_volume = {"type": "bind", "source": plan.config_dir, "target": CONFIG_MOUNT, "read_only": True}
    mock_volume = {"type": "bind", "source": plan.mock_dir, "target": MOCK_MOUNT, "read_only": True}
    network = "hlocal"
    doc = {
        "name": project_name(project),
        "services": {
            "gateway": {
                "image": plan.gateway_image,
                "entrypoint": ["/usr/local/bin/envoy"],
                "command": envoy_args(f"{CONFIG_MOUNT}/envoy.yaml", project.gateway,
                                      capture=project.gateway.captures("docker")),
                # The directory, not single files: a replaced file stays visible (moby/moby#22627).
                "volumes": [dict(config_volume)],
                "ports": [
                    f"127.0.0.1:{plan.gateway_port}:{GATEWAY_PORT}",
                    f"127.0.0.1:{plan.admin_port}:{ADMIN_PORT}",
                ],
                "depends_on": ["backend"],
                "healthcheck": _health(["CMD", "bash", "-c", GATEWAY_HEALTH]),
                "labels": _labels(project, "gateway"),
                "networks": [network],
            },
            "backend": {
                "image": plan.backend_image,
                "working_dir": "/opt",
                "command": list(mock_command("backend", "backend.json", plan.token_file)),
                "environment": {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
                "volumes": [dict(mock_volume), dict(config_volume)],
                "ports": [f"127.0.0.1:{plan.control_port}:{CONTROL_PORT}"],
                "healthcheck": _health(["CMD", "python3", "-c", BACKEND_HEALTH]),
                "labels": _labels(project, "backend"),
                "networks": {network: {"aliases": ["backend"]}},
            },
        },
        "networks": {network: {"name": project_name(project), "labels": {LABEL: project.name}}},
    }
    services = doc["services"]
    for extra in plan.extra:
        service: dict[str, Any] = {"image": extra.image}
        if extra.command is not None:
            service["command"] = list(extra.command)
        if extra.mounts_config:
            service.update(working_dir="/opt", environment={"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"},
                           volumes=[dict(mock_volume), dict(config_volume)])
        if extra.ports and not extra.in_gateway_network:
            service["ports"] = [f"127.0.0.1:{p}" for p in extra.ports]
        if extra.health:
            service["healthcheck"] = _health(list(extra.health))
        service["labels"] = _labels(project, extra.name)
        if extra.in_gateway_network:
            service.update(network_mode="service:gateway", depends_on=["gateway"])
        else:
            service["networks"] = {network: {"aliases": list(extra.aliases)}}
        services[extra.name] = service
    gateway = services["gateway"]
    if plan.tls_port is not None:
        gateway["ports"].append(f"127.0.0.1:{plan.tls_port}:{TLS_PORT}")
    gateway["ports"] += [f"127.0.0.1:{p}" for e in plan.extra if e.in_gateway_network for p in e.ports]
    gateway["depends_on"] = ["backend", *(e.name for e in plan.extra if not e.in_gateway_network)]
    if plan.host_gateway:
        gateway["extra_hosts"] = ["host.docker.internal:host-gateway"]
    return doc
