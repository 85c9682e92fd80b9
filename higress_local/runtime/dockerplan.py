"""The docker runtime's plan: the Compose stack `up` starts (the gateway's files, ports, certificate,
the service containers), written into .hlocal/<name>/ and kept in the stack's state."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from . import images as imagelib
from .. import mock
from . import stage as staging
from ..config.project import Project
from ..errors import ConfigError, PluginError
from ..render.commandlines import redis_args
from ..render.compose import (ADMIN_PORT, BACKEND_HEALTH, BACKEND_PORT, CONFIG_MOUNT, GATEWAY_PORT, TLS_PORT,
                              ComposePlan, ComposeService, mock_command, mock_health, project_name, render_compose)
from ..render.envoy import Layout
from ..inspect.store import switch_capture
from ..inspect.wiring import prepare as prepare_inspector
from ..state import StackState
from ..system import ownfiles as safefs
from ..system import ports as portlib
from ..system.dockerenv import ImageNeed
from .services import (ENV_REDIS, MOCK_CONTROL_PORT as MOCK_CONTROL, REDIS_PORT, ServicePlan, how,
                       plan_docker as plan_docker_services, redis_image, replica_control_port)

COMPOSE_FILE = "compose.yaml"

MOCK_COPY = "hlocal_mock"  # the mock package's copy in the stack folder (mounted at render.compose.MOCK_MOUNT)


def mock_dir(state_dir: Path) -> Path:
    """Copy hlocal's mock package (standard library only) into the stack folder and return the copy.

    Mounted from there, not from the installed package: Docker Desktop shares only some host folders
    (a virtualenv or site-packages outside them is refused), while the project folder is where the
    user works and already holds the rendered files."""
    source = Path(mock.__file__).resolve().parent
    target = safefs.ensure_dir(state_dir / MOCK_COPY)
    wanted = {file.name for file in source.glob("*.py")}
    for stale in target.iterdir():  # a file a newer hlocal dropped must not linger in the copy
        if stale.name in wanted:
            continue
        if stale.is_dir() and not stale.is_symlink():
            safefs.remove_tree(stale)
        else:
            stale.unlink()
    for name in sorted(wanted):
        safefs.write_text(target / name, (source / name).read_text(encoding="utf-8"))
    return target


def plan_docker(project: Project, flavor: str, check_ports: bool = True) -> staging.Plan:
    """Check plugins, pick host ports, write the Envoy files and compose.yaml into .hlocal/<name>/."""
    if project.gateway.mcp_server:
        # Higress's image carries mcp-session in /var/lib/istio/envoy/golang-filter.so, but the Envoy
        # config hlocal renders does not load it (nor does stock Envoy have the golang filter).
        raise ConfigError(f"{project.file.name}: gateway.mcp_server (MCP's SSE transport) needs the native runtime",
                          "use `--runtime native`, where hlocal emulates Higress's mcp-session")
    gateway_port, admin_port = staging.resolve_gateway_ports(project, check_ports)
    tls_port = staging.resolve_tls_port(project, (gateway_port, admin_port), check_ports)
    control_port = portlib.free_port()
    state_dir = project.state_dir
    host_cert: list[str] = []  # gateway.tls: written once stage_files has checked the state folder, as on native
    service_plans = plan_docker_services(project, state_dir)
    replicas = {name: [[p.address, r.port] for r in p.replicas] for name, p in service_plans.items() if p.replicas}

    def layout_for(modules: dict[str, str], bridge: str | None) -> Layout:
        tls = _mounted_tls(project, state_dir, host_cert) if tls_port is not None else {}
        return Layout(
            services={name: [p.address, p.port] for name, p in service_plans.items()}, replicas=replicas,
            flavor=flavor, listen_address="0.0.0.0", listen_port=GATEWAY_PORT,
            admin_address="0.0.0.0", admin_port=ADMIN_PORT,
            backend_address="backend", backend_port=BACKEND_PORT,
            ecds_dir=f"{CONFIG_MOUNT}/ecds", xds_dir=f"{CONFIG_MOUNT}/xds",
            modules={name: f"{CONFIG_MOUNT}/modules/{file}" for name, file in modules.items()},
            bridge_module=f"{CONFIG_MOUNT}/modules/{bridge}" if bridge else None,
            access_log="/dev/stdout", **tls,
            # gateway.inspect: the taps stream over the published admin port to the collector, which
            # runs on this machine beside the stack (runtime/docker.py); nothing is written inside.
            # Higress's Envoy builds the tap filter, and with it the admin /tap handler (higress-group/proxy
            # bazel/extension_config/extensions_build_config.bzl: envoy.filters.http.tap).
            # Off by default here, and switched by a restart (the taps are rendered only when on).
            inspect_dir=f"{CONFIG_MOUNT}/inspect" if project.gateway.captures("docker") else None,
        )

    checks, layout, files = staging.stage_files(project, flavor, layout_for, replicas)
    if layout.inspect_dir:
        prepare_inspector(state_dir)
        switch_capture(state_dir / "inspect", True)  # a native stack here before may have left it off
    relayed = [c.plugin.name for c in checks if "redis" in c.compat.emulations]
    if relayed and flavor == "envoy":
        # The Redis relay runs beside a native gateway only; in a container stack stock Envoy has no
        # way to reach Redis for a plugin, so refuse before anything starts.
        raise PluginError(f"plugin(s) {', '.join(relayed)} call Redis, which the docker runtime with flavor "
                          "envoy cannot provide (hlocal's Redis relay runs with the native runtime only)",
                          "use `--runtime native`, or gateway.flavor: higress (the Higress image has Redis)")
    token = staging.new_token()
    compose = render_compose(project, ComposePlan(
        gateway_image=imagelib.gateway_image(project, flavor), backend_image=imagelib.backend_image(project),
        gateway_port=gateway_port, admin_port=admin_port, control_port=control_port,
        config_dir=str(state_dir), mock_dir=str(mock_dir(state_dir)),
        extra=tuple(compose_services(project, service_plans)),
        host_gateway=any(p.how == "url" for p in service_plans.values()), tls_port=tls_port,
    ))
    compose_file = files.write_text(state_dir / COMPOSE_FILE, yaml.safe_dump(compose, sort_keys=False))
    state = StackState(
        name=project.name, runtime="docker", flavor=flavor, config_file=str(project.file),
        started=time.time(), gateway_port=gateway_port, admin_port=admin_port,
        backend_port=BACKEND_PORT, control_port=control_port,
        plugins=[staging.plugin_state(c, layout.modules[c.plugin.name]) for c in checks],
        layout=layout, restart_key=staging.restart_key(project), services=service_plans,
        compose_file=str(compose_file), compose_project=project_name(project), control_token=token,
        tls_port=tls_port, tls_cert=host_cert[0] if host_cert else None,
    )
    return staging.Plan(state=state, layout=layout, files=files, checks=checks)


def _mounted_tls(project: Project, state_dir: Path, host_cert: list[str]) -> dict[str, Any]:
    """gateway.tls: the certificate in .hlocal/<name>/tls/ (kept across restarts, as on native), which the
    gateway reads through the config mount; its listener is TLS_PORT inside the container. The
    certificate's path on this machine goes into `host_cert`."""
    from .tls import mounted_certificate  # cryptography: only when gateway.tls is on

    cert, cert_inside, key_inside = mounted_certificate(project, state_dir, CONFIG_MOUNT)
    host_cert[:] = [str(cert.cert)]
    return {"tls_port": TLS_PORT, "tls_cert": cert_inside, "tls_key": key_inside}


def compose_services(project: Project, plans: dict) -> list[ComposeService]:
    """Containers for the services that run in the stack (mocks, redis, images); urls need none."""
    out = []
    for service in project.services:
        plan = plans[service.name]
        aliases = tuple(dict.fromkeys([service.host, plan.component]))
        if plan.how == "mock" and plan.replicas:
            out.extend(_replica_services(project, plan))
        elif plan.how == "mock":
            out.append(ComposeService(
                name=plan.component, image=imagelib.backend_image(project), aliases=aliases,
                command=mock_command(service.name, plan.config_file), ports=(f"{plan.control_port}:{MOCK_CONTROL}",),
                health=("CMD", "python3", "-c", BACKEND_HEALTH), mounts_config=True))
        elif plan.how == "redis":
            out.append(ComposeService(
                name=plan.component, image=redis_image(service), aliases=aliases,
                command=("redis-server", *redis_args(REDIS_PORT, "0.0.0.0")),
                ports=(f"{plan.host_port}:{REDIS_PORT}",), health=("CMD", "redis-cli", "ping")))
        elif plan.how == "image":
            out.append(ComposeService(name=plan.component, image=service.image, aliases=aliases))
    return out


def _replica_services(project: Project, plan: ServicePlan) -> list[ComposeService]:
    """mock.replicas: a mock container per replica, each with its own journal published on the host."""
    out = []
    for replica in plan.replicas:
        control = replica_control_port(replica.port)
        out.append(ComposeService(
            name=replica.component, image=imagelib.backend_image(project), aliases=(),
            command=mock_command(f"{plan.name}-{replica.index}", str(plan.config_file), port=replica.port,
                                 control_port=control),
            ports=(f"{replica.control_port}:{control}",), health=("CMD", "python3", "-c", mock_health(control)),
            mounts_config=True, in_gateway_network=True))
    return out


def service_images(project: Project) -> list[ImageNeed]:
    needs = []
    for index, service in enumerate(project.services):
        if how(service) == "redis":
            needs.append(ImageNeed(redis_image(service), f"services[{index}] (redis)",
                                   f"services[{index}].image (or ${ENV_REDIS})"))
        elif how(service) == "image":
            needs.append(ImageNeed(service.image, f"services[{index}].image", f"services[{index}].image"))
    return needs
