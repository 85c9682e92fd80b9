"""Shared steps of `up`: check plugins, pick ports, write the rendered files, wait, classify."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..gatewaylog.classify import LogWatch, classify_exit
from ..config.project import Plugin, Project
from ..errors import ConfigError, PortInUse
from ..inspect.view import taps_dir
from ..mcpsession.wiring import COMPONENT as SESSION_COMPONENT, session_ready_check
from ..system.readiness import ReadyTarget, wait_until_ready
from ..render.envoy import (CLUSTERS_FILE, ROUTES_FILE, Layout, ecds_file_name, plugin_configuration_json,
                            plugin_filter_name, render_bootstrap, render_clusters, render_discovery, render_ecds,
                            render_route_config)
from ..state import PluginState, RestartKey, StackState, StateRead
from ..system import ports as portlib
from .files import GatewayFiles
from .logformat import check_access_log_format
from .services import plan_native as plan_native_services, ready_check, write_service_configs
from ..inspect.store import switch_capture
from ..inspect.wiring import prepare as prepare_inspector
from ..wasm.adapt.upstream import upstream_table
from ..wasm.plugins import check_project, prepare, require_runnable

if TYPE_CHECKING:
    from ..wasm.plugins import PluginCheck


@dataclass
class Plan:
    """Everything `up` rendered, and where it put it."""

    state: StackState
    layout: Layout
    files: GatewayFiles
    checks: list[PluginCheck] = field(default_factory=list)


def existing_state(project: Project, recreate: bool, found: StateRead | None = None) -> StackState | None:
    """What `up` finds: links in the state folder are refused first; an unreadable state is an error
    unless --recreate (which starts afresh; the runtime stops leftovers by their marker or labels).
    `found`: state.json as the caller has already read it (no second read)."""
    GatewayFiles(project.state_dir).guard()
    found = found or StackState.read(project.state_dir)
    if found.problem is not None and not recreate:
        raise found.problem
    return found.state


def new_token() -> str:
    """The mocks' control-API token of one stack (kept in the 0600 state file)."""
    return secrets.token_urlsafe(24)


def checked_plugins(project: Project, flavor: str, replicas: dict[str, list] | None = None) -> list[PluginCheck]:
    """Inspect every module and refuse, before anything starts, what the gateway cannot run;
    `replicas` (Layout.replicas) says where mock replicas listen, for the upstream-hosts table."""
    # Imported on use: module inspection and adaptation are not needed by a config-only `hlocal reload`,
    # a short-lived process whose time is mostly imports.

    report = check_project(project, flavor)
    require_runnable(report)
    hosts = upstream_table(project.services, replicas)
    return [prepare(check, flavor, project.gateway.wasm_log_level, hosts, project.gateway.connection_buffer_limits)
            for check in report.plugins]


def ecds_version(check: PluginCheck) -> str:
    return version_of(check.served_sha256, check.plugin)


def version_of(served_sha256: str, plugin: Plugin) -> str:
    """The ECDS version of a module + configuration pair (+ a failure_policy other than the default, which
    is in the filter config too: changing it is a config-only reload)."""
    policy = b"" if plugin.failure_policy == "FAIL_RELOAD" else plugin.failure_policy.encode()
    digest = hashlib.sha256(served_sha256.encode() + plugin_configuration_json(plugin).encode() + policy)
    return digest.hexdigest()[:16]


def config_sha256(plugin: Plugin) -> str:
    return hashlib.sha256(plugin_configuration_json(plugin).encode()).hexdigest()


def source_stat(path: Path) -> list[int]:
    """What tells, without reading it, that a module file is the one read before."""
    try:
        st = path.stat()
    except OSError:
        return []
    return [st.st_size, st.st_mtime_ns]


def plugin_state(check: PluginCheck, served_path: str) -> PluginState:
    return PluginState(
        version=ecds_version(check),
        name=check.plugin.name, source=str(check.plugin.wasm), sha256=check.info.sha256,
        abi=check.info.abi_version, served=served_path, served_sha256=check.served_sha256,
        adaptations=list(check.compat.adaptations),
        config_sha256=config_sha256(check.plugin),
        source_stat=source_stat(check.plugin.wasm),
    )


def write_rendered(project: Project, layout: Layout, checks: list[PluginCheck], files: GatewayFiles) -> Path:
    """ECDS files for every plugin, the route and cluster files, then the bootstrap; returns the bootstrap."""
    import yaml

    for check in checks:
        files.write_json(files.ecds(ecds_file_name(check.plugin)), render_ecds(check.plugin, layout, ecds_version(check)))
    write_xds(project, layout, files)
    return files.write_text(files.bootstrap, yaml.safe_dump(render_bootstrap(project, layout), sort_keys=False))


def xds_documents(project: Project, layout: Layout) -> dict[str, dict[str, Any]]:
    """routes.json and clusters.json, each versioned by its own content."""
    out = {}
    for name, resources in ((ROUTES_FILE, [render_route_config(project)]),
                            (CLUSTERS_FILE, render_clusters(project, layout))):
        version = hashlib.sha256(json.dumps(resources, sort_keys=True).encode()).hexdigest()[:16]
        out[name] = render_discovery(resources, version)
    return out


def write_xds(project: Project, layout: Layout, files: GatewayFiles) -> None:
    for name, doc in xds_documents(project, layout).items():
        files.write_json(files.xds(name), doc)


def stage_files(project: Project, flavor: str, layout_for: Callable[[dict[str, str], str | None], Layout],
                replicas: dict[str, list] | None = None) -> tuple[list[PluginCheck], Layout, GatewayFiles]:
    """Check plugins, copy the modules the gateway loads, write ECDS files, bootstrap and stubs.

    `layout_for(module file names, bridge file name)` says where those are as the gateway sees them.
    """
    check_access_log_format(project)  # else a bad format fails only when Envoy starts, after the rest
    checks = checked_plugins(project, flavor, replicas)
    files = GatewayFiles(project.state_dir)
    files.reset()
    modules = {check.plugin.name: files.put_module(check.staged_name(), check.served).name for check in checks}
    bridge = files.put_bridge().name if flavor == "envoy" and checks else None
    layout = layout_for(modules, bridge)
    write_rendered(project, layout, checks, files)
    files.write_stubs(files.backend_config, project.backend.stubs)
    write_service_configs(project, files)
    return checks, layout, files


def restart_key(project: Project) -> RestartKey:
    """What only a restart can change: the listener, the filter chain, images, log levels."""
    return RestartKey(
        # As state.json keeps it (tuples become lists), so a reload compares like with like.
        gateway=json.loads(json.dumps(dataclasses.asdict(project.gateway))),
        chain=[p.name for p in project.chain()],
        # Adding, removing or re-pointing a service starts or stops processes/containers;
        # only a mock's stubs can change in place.
        # As state.json keeps them too (tuples such as urls and mock.metrics become lists).
        services=[{**json.loads(json.dumps(dataclasses.asdict(s))), "stubs": None} for s in project.services],
        backend_image=project.backend.image,
    )


def resolve_gateway_ports(project: Project, check: bool = True) -> tuple[int, int]:
    """The listener and admin ports on 127.0.0.1: as configured (checked free unless `check` is off) or picked."""
    if check:
        setting = "--port" if project.port_option else "gateway.port"
        try:
            gateway_port = portlib.resolve(project.gateway.port, f"gateway listener, {setting}")
        except PortInUse as exc:
            if project.port_option:  # not hlocal.yaml's: the command line set it
                exc.hint = "pass another --port (0 picks a free one), or stop that process"
            raise
        admin_port = portlib.resolve(project.gateway.admin_port, "gateway admin, gateway.admin_port")
    else:  # `hlocal render`: nothing starts now, so a port taken now (e.g. by the running stack) is fine
        gateway_port = project.gateway.port or portlib.free_port()
        admin_port = project.gateway.admin_port or portlib.free_port()
    if admin_port == gateway_port:
        raise ConfigError(f"{project.file.name}: gateway.admin_port equals gateway.port ({gateway_port})",
                          "give them different values (0 picks a free port)")
    return gateway_port, admin_port


def plan_native(project: Project, flavor: str, check_ports: bool = True) -> Plan:
    """Check, pick ports and write every file the native stack runs from."""
    gateway_port, admin_port = resolve_gateway_ports(project, check_ports)
    tls_port = resolve_tls_port(project, (gateway_port, admin_port), check_ports)
    backend_port, control_port = portlib.free_port(), portlib.free_port()
    state_dir = project.state_dir
    service_plans = plan_native_services(project, state_dir)
    replicas = {name: [[p.address, r.port] for r in p.replicas] for name, p in service_plans.items() if p.replicas}
    # gateway.mcp_server: the session process the gateway routes SSE and session messages to.
    mcp_session_port = portlib.free_port() if project.gateway.mcp_server else None

    def layout_for(modules: dict[str, str], bridge: str | None) -> Layout:
        module_dir = state_dir / "modules"
        # gateway.tls: a self-signed certificate kept in tls/ (outside the fresh-start folders, so a
        # client that trusted it keeps working across restarts while it covers the same names).
        cert = None
        if tls_port is not None:
            from .tls import ensure_certificate  # cryptography: only when gateway.tls is on

            cert = ensure_certificate(project, state_dir / "tls")
        return Layout(
            # Always rendered: gateway.inspect switches capture on or off (a reload, not a restart).
            inspect_dir=str(taps_dir(state_dir)),
            tls_port=tls_port, tls_cert=str(cert.cert) if cert else None, tls_key=str(cert.key) if cert else None,
            services={name: [p.address, p.port] for name, p in service_plans.items()}, replicas=replicas,
            flavor=flavor, listen_address="127.0.0.1", listen_port=gateway_port,
            admin_address="127.0.0.1", admin_port=admin_port,
            backend_address="127.0.0.1", backend_port=backend_port,
            ecds_dir=str(state_dir / "ecds"), xds_dir=str(state_dir / "xds"),
            modules={name: str(module_dir / file) for name, file in modules.items()},
            bridge_module=str(module_dir / bridge) if bridge else None,
            access_log=str(state_dir / "logs" / "access.log"),
            mcp_session_port=mcp_session_port,
        )

    checks, layout, files = stage_files(project, flavor, layout_for, replicas)
    if layout.inspect_dir:
        # Imported on use (the inspector pulls in an HTTP client a one-shot reload does without).

        prepare_inspector(state_dir)  # before Envoy starts: a tap whose folder is missing writes nothing
        switch_capture(state_dir / "inspect", project.gateway.captures("native"))
    state = StackState(
        name=project.name, runtime="native", flavor=flavor, config_file=str(project.file),
        started=time.time(), gateway_port=gateway_port, admin_port=admin_port,
        backend_port=backend_port, control_port=control_port,
        plugins=[plugin_state(c, layout.modules[c.plugin.name]) for c in checks],
        layout=layout, restart_key=restart_key(project), services=service_plans,
        control_token=new_token(), tls_port=tls_port, tls_cert=layout.tls_cert,
    )
    return Plan(state=state, layout=layout, files=files, checks=checks)


def resolve_tls_port(project: Project, taken: tuple[int, ...], check: bool = True) -> int | None:
    """The https listener's port with gateway.tls (None without): as configured or picked."""
    if not project.gateway.tls:
        return None
    wanted = project.gateway.tls_port
    port = portlib.resolve(wanted, "gateway https listener, gateway.tls_port") if check else (wanted or portlib.free_port())
    if port in taken:
        raise ConfigError(f"{project.file.name}: gateway.tls_port ({port}) equals gateway.port or gateway.admin_port",
                          "give it a port of its own (0 picks a free one)")
    return port


def wait_ready(project: Project, state: StackState, plan: Plan, timeout: float,
               failed: Callable[[], None], log_source: Any = None) -> Any:
    """Wait for the readiness rule; `failed` and the gateway's output raise the classified error."""
    log_file = project.state_dir / "logs" / "gateway.log"
    watch = LogWatch(log_source or log_file, [c.plugin.name for c in plan.checks], where=str(project.state_dir))

    def broken() -> None:
        failed()
        watch.raise_if_failed()

    plans = list(state.services.values())
    extra_checks = [(lambda p=p: ready_check(p)) for p in plans]
    session = state.components.get(SESSION_COMPONENT)
    if session is not None:  # gateway.mcp_server
        extra_checks.append(lambda: session_ready_check(session.ports["control"]))
    target = ReadyTarget(
        extra_checks=extra_checks,
        admin_url=state.admin_url, gateway_host="127.0.0.1", gateway_port=state.gateway_port,
        control_url=state.control_url, versions={plugin_filter_name(c.plugin): ecds_version(c) for c in plan.checks},
        failed=broken,
    )
    return wait_until_ready(target, timeout, log_hint="hlocal logs gateway")


def raise_exited(name: str, exit_info: dict, log_file: Path, state: StackState) -> None:
    """A component died during start: say why, from its log."""
    raise classify_exit(name, exit_info, log_file, [p.name for p in state.plugins])
