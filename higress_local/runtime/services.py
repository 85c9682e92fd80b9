"""Services a plugin calls: where each one runs, how the gateway reaches it, how to tell it is up."""

from __future__ import annotations

import ipaddress
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

from ..render.commandlines import MockLine, redis_args
from ..config.project import Project, Service
from ..errors import ConfigError, EnvironmentProblem
from ..settings import ENV_REDIS_IMAGE as ENV_REDIS, settings
from ..system.ports import free_port
from ..system.readiness import admin_get
from ..relay.wiring import relay_argv
from ..state import ReplicaState, ServiceState
from ..system.wait import NotYet
from .files import GatewayFiles

MOCK_PORT, MOCK_CONTROL_PORT, REDIS_PORT = 8080, 8081, 6379
REPLICA_PORT = 18080  # docker, mock.replicas: the first replica's port in the gateway container (then +2 each)
REDIS_IMAGE = "redis:7-alpine"


# A service's plan is what the state keeps of it.
ServicePlan = ServiceState


def how(service: Service) -> str:
    if service.kind == "redis":
        return "redis"
    return "url" if service.url or service.urls else "image" if service.image else "mock"


def _url_endpoint(service: Service) -> tuple[str, int]:
    if service.urls:  # the cluster gets every endpoint (render/endpoints.py); the plan names the first
        return service.urls[0].address, service.urls[0].port
    parts = urlsplit(service.url or "")
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def write_service_configs(project: Project, files: GatewayFiles) -> None:
    for service in project.services:
        if how(service) == "mock":
            files.write_stubs(files.service_config(service.name), service.stubs)


def plan_native(project: Project, state_dir: Path) -> dict[str, ServicePlan]:
    plans = {}
    for index, service in enumerate(project.services):
        kind, component = how(service), f"svc-{service.name}"
        base = dict(name=service.name, kind=service.kind, how=kind, component=component, cluster=service.cluster_name())
        if kind == "image":
            raise ConfigError(f"{project.file.name}: services[{index}].image needs the docker runtime",
                              "use `--runtime docker`, or give the service a mock or a url")
        if kind == "url":
            address, port = _url_endpoint(service)
            plans[service.name] = ServicePlan(**base, address=address, port=port)
        elif kind == "redis":
            # Stock Envoy has no Redis client for plugins: the adapted module sends each command as
            # an HTTP call on the service's cluster, so the cluster points at hlocal's relay
            # (port, also its health on control_port) and the relay at redis-server (host_port).
            relay = free_port()
            plans[service.name] = ServicePlan(**base, address="127.0.0.1", port=relay, host_port=free_port(),
                                              control_port=relay)
        elif service.lists_hosts:
            plans[service.name] = _replicated(base, service, str(state_dir / "services" / f"{service.name}.json"))
        else:
            port = free_port()
            plans[service.name] = ServicePlan(**base, address="127.0.0.1", port=port, host_port=port,
                                              control_port=free_port(),
                                              config_file=str(state_dir / "services" / f"{service.name}.json"))
    return plans


def _replicated(base: dict, service: Service, config_file: str) -> ServicePlan:
    """mock.replicas: one mock process per replica (each ~25 MB; 3 listen in 0.5 s), all answering
    from the service's stubs, each with its own port, journal and control port; the plan names replica 0."""
    replicas = [ReplicaState(index=i, component=f"{base['component']}-{i}", port=free_port(), control_port=free_port())
                for i in range(service.replicas)]
    return ServicePlan(**base, address="127.0.0.1", port=replicas[0].port, host_port=replicas[0].port,
                       config_file=config_file, replicas=replicas)


def native_argv(plan: ServicePlan, token_file: str | None = None, replica: ReplicaState | None = None) -> list[str]:
    """The command line that runs a service locally (a mock or one of its replicas, or the Redis relay
    with its redis-server)."""
    if plan.how == "redis":
        redis = shutil.which("redis-server")
        if redis is None:
            raise EnvironmentProblem(
                f"service {plan.name!r} is a redis service but redis-server is not installed",
                "install it (e.g. apt-get install redis-server), or use `--runtime docker` (a redis image)")
        redis_line = [redis, *redis_args(plan.host_port or 0, "127.0.0.1")]
        # One component: the relay runs redis-server as its child and stops with it.
        return [*relay_argv(plan.port, "127.0.0.1", plan.host_port or 0), "--", *redis_line]
    if replica is not None:
        return MockLine(name=f"{plan.name}-{replica.index}", port=replica.port, control_port=replica.control_port,
                        config=str(plan.config_file), token_file=token_file).native()
    return MockLine(name=plan.name, port=plan.host_port or 0, control_port=plan.control_port or 0,
                    config=str(plan.config_file), token_file=token_file).native()


def plan_docker(project: Project, state_dir: Path) -> dict[str, ServicePlan]:
    plans: dict[str, ServicePlan] = {}
    for index, service in enumerate(project.services):
        kind, component = how(service), f"svc-{service.name}"
        base = dict(name=service.name, kind=service.kind, how=kind, component=component, cluster=service.cluster_name())
        if kind == "url":
            _refuse_loopback(project, index, service)
            address, port = _url_endpoint(service)
            plans[service.name] = ServicePlan(**base, address=address, port=port)
        elif kind == "redis":
            plans[service.name] = ServicePlan(**base, address=component, port=REDIS_PORT, host_port=free_port())
        elif kind == "image":
            plans[service.name] = ServicePlan(**base, address=component, port=service.container_port or service.port)
        elif service.lists_hosts:  # replicas of all services share the gateway's namespace: number them on
            taken = sum(len(p.replicas) for p in plans.values())
            plans[service.name] = _docker_replicated(base, service, taken)
        else:
            plans[service.name] = ServicePlan(**base, address=component, port=MOCK_PORT, control_port=free_port(),
                                              config_file=f"services/{service.name}.json")
    return plans


def _refuse_loopback(project: Project, index: int, service: Service) -> None:
    """docker: a loopback url is the gateway container itself, never a server on this machine."""
    hosts = [(f"urls[{i}]", e.address) for i, e in enumerate(service.urls)] or [("url", urlsplit(service.url or "").hostname)]
    for key, host in hosts:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host or "").is_loopback
        except ValueError:
            continue
        if loopback:
            raise ConfigError(
                f"{project.file.name}: services[{index}].{key} is {host}, which on the docker runtime is the gateway "
                "container itself, not this machine",
                "use `--runtime native`; or listen beyond loopback and give this machine's address as containers "
                "reach it (url: host.docker.internal; urls: an IP, e.g. the bridge gateway of `docker network "
                "inspect bridge`); or let hlocal run the endpoints: mock: {replicas: N}")


def replica_control_port(port: int) -> int:
    """docker, mock.replicas: a replica's control port in the gateway container, next to its port."""
    return port + 1


def _docker_replicated(base: dict, service: Service, first: int) -> ServicePlan:
    """mock.replicas on docker: a mock container per replica in the gateway container's network namespace,
    so each is a 127.0.0.1 host of the cluster as on native; its journal is published on the host.
    `first`: how many replicas earlier services placed there (each replica takes two ports)."""
    replicas = [ReplicaState(index=i, component=f"{base['component']}-{i}", port=REPLICA_PORT + 2 * (first + i),
                             control_port=free_port()) for i in range(service.replicas)]
    return ServicePlan(**base, address="127.0.0.1", port=replicas[0].port,
                       config_file=f"services/{service.name}.json", replicas=replicas)


def redis_image(service: Service) -> str:
    return service.image or settings().redis_image or REDIS_IMAGE


def ready_check(plan: ServicePlan) -> None:
    """Raise NotYet until the service answers where the host can see it (mocks, each replica, redis)."""
    controls = plan.journals() if plan.replicas else {plan.name: plan.control_url} if plan.control_url else {}
    for label, url in controls.items():
        try:
            response = admin_get(f"{url}/__hlocal/health")
        except OSError as exc:
            raise NotYet(f"service {label} not answering") from exc
        if response.status_code != 200:
            raise NotYet(f"service {label} health answered {response.status_code}")
    if not controls and plan.how == "redis" and plan.host_port:
        try:
            with socket.create_connection(("127.0.0.1", plan.host_port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                if not sock.recv(64).startswith(b"+PONG"):
                    raise NotYet(f"redis {plan.name} did not answer PONG")
        except OSError as exc:
            raise NotYet(f"redis {plan.name} not answering") from exc
