"""Shared steps of `up`: check plugins, pick ports, write the rendered files, wait, classify."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import Plugin, Project
from ..plugins import PluginCheck, check_project, prepare, require_runnable, stage
from ..render.envoy import (CLUSTERS_FILE, ROUTES_FILE, Layout, ecds_file_name, plugin_configuration_json,
                            plugin_filter_name, render_bootstrap, render_clusters, render_discovery, render_ecds,
                            render_route_config)
from ..state import PluginState, StackState
from .. import ports as portlib

BRIDGE_NAME = "hlocal-bridge.wasm"


@dataclass
class Plan:
    """Everything `up` rendered, and where it put it."""

    state: StackState
    layout: Layout
    bootstrap: Path
    backend_config: Path
    checks: list[PluginCheck] = field(default_factory=list)


def write_atomic(path: Path, text: str) -> None:
    """Write by rename, so a watcher (Envoy's ECDS) never reads a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def checked_plugins(project: Project, flavor: str) -> list[PluginCheck]:
    """Inspect every module and refuse, before anything starts, what the gateway cannot run."""
    report = check_project(project, flavor)
    require_runnable(report)
    return [prepare(check, flavor) for check in report.plugins]


def ecds_version(check: PluginCheck) -> str:
    return version_of(check.served_sha256, check.plugin)


def version_of(served_sha256: str, plugin: Plugin) -> str:
    """The ECDS version of a module + configuration pair."""
    digest = hashlib.sha256(served_sha256.encode() + plugin_configuration_json(plugin).encode())
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


def reset_dirs(state_dir: Path) -> None:
    """A fresh start: old rendered files and module copies must not leak into the new stack."""
    for sub in ("ecds", "xds", "modules", "run", "services"):
        shutil.rmtree(state_dir / sub, ignore_errors=True)
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    (state_dir / "logs").mkdir(parents=True, exist_ok=True)


def stage_bridge(modules_dir: Path) -> Path:
    from ..bridge import bridge_wasm_path

    target = modules_dir / BRIDGE_NAME
    shutil.copyfile(bridge_wasm_path(), target)
    return target


def write_rendered(project: Project, layout: Layout, checks: list[PluginCheck], state_dir: Path) -> Path:
    """ECDS files for every plugin, then the bootstrap; returns the bootstrap path."""
    import yaml

    for check in checks:
        doc = render_ecds(check.plugin, layout, ecds_version(check))
        write_atomic(state_dir / "ecds" / ecds_file_name(check.plugin), json.dumps(doc, indent=2))
    write_xds(project, layout, state_dir)
    bootstrap = state_dir / "envoy.yaml"
    write_atomic(bootstrap, yaml.safe_dump(render_bootstrap(project, layout), sort_keys=False))
    return bootstrap


def xds_documents(project: Project, layout: Layout) -> dict[str, dict[str, Any]]:
    """routes.json and clusters.json, each versioned by its own content."""
    out = {}
    for name, resources in ((ROUTES_FILE, [render_route_config(project)]),
                            (CLUSTERS_FILE, render_clusters(project, layout))):
        version = hashlib.sha256(json.dumps(resources, sort_keys=True).encode()).hexdigest()[:16]
        out[name] = render_discovery(resources, version)
    return out


def write_xds(project: Project, layout: Layout, state_dir: Path) -> None:
    """Write the route and cluster files (a reload swaps them through reload._write_xds)."""
    for name, doc in xds_documents(project, layout).items():
        write_atomic(state_dir / "xds" / name, json.dumps(doc, indent=2))


def write_backend_config(project: Project, state_dir: Path) -> Path:
    path = state_dir / "backend.json"
    write_atomic(path, json.dumps({"stubs": list(project.backend.stubs)}, indent=2))
    return path


def stage_files(project: Project, flavor: str, layout_for: Callable[[dict[str, str], str | None], Layout]
                ) -> tuple[list[PluginCheck], Layout, Path]:
    """Check plugins, copy the modules the gateway loads, write ECDS files, bootstrap and backend config.

    `layout_for(module file names, bridge file name)` says where those are as the gateway sees them.
    """
    checks = checked_plugins(project, flavor)
    state_dir = project.state_dir
    reset_dirs(state_dir)
    modules = {check.plugin.name: stage(check, state_dir / "modules").name for check in checks}
    bridge = stage_bridge(state_dir / "modules").name if flavor == "envoy" and checks else None
    layout = layout_for(modules, bridge)
    bootstrap = write_rendered(project, layout, checks, state_dir)
    write_backend_config(project, state_dir)
    from .services import write_service_configs

    write_service_configs(project, state_dir)
    return checks, layout, bootstrap


def restart_key(project: Project) -> dict[str, Any]:
    """What only a restart can change: the listener, the filter chain, images, log levels."""
    return {
        "gateway": dataclasses.asdict(project.gateway),
        "chain": [p.name for p in project.chain()],
        # Adding, removing or re-pointing a service starts or stops processes/containers;
        # only a mock's stubs can change in place.
        "services": [{**dataclasses.asdict(s), "stubs": None} for s in project.services],
        "backend_image": project.backend.image,
    }


def resolve_gateway_ports(project: Project) -> tuple[int, int]:
    """The listener and admin ports on 127.0.0.1: as configured (checked free) or picked."""
    gateway_port = portlib.resolve(project.gateway.port, "gateway listener, gateway.port")
    admin_port = portlib.resolve(project.gateway.admin_port, "gateway admin, gateway.admin_port")
    if admin_port == gateway_port:
        from ..errors import ConfigError

        raise ConfigError(f"{project.file.name}: gateway.admin_port equals gateway.port ({gateway_port})",
                          "give them different values (0 picks a free port)")
    return gateway_port, admin_port


def plan_native(project: Project, flavor: str) -> Plan:
    """Check, pick ports and write every file the native stack runs from."""
    from . import services as svc

    gateway_port, admin_port = resolve_gateway_ports(project)
    backend_port, control_port = portlib.free_port(), portlib.free_port()
    state_dir = project.state_dir
    service_plans = svc.plan_native(project, state_dir)

    def layout_for(modules: dict[str, str], bridge: str | None) -> Layout:
        module_dir = state_dir / "modules"
        return Layout(
            services={name: [p.address, p.port] for name, p in service_plans.items()},
            flavor=flavor, listen_address="127.0.0.1", listen_port=gateway_port,
            admin_address="127.0.0.1", admin_port=admin_port,
            backend_address="127.0.0.1", backend_port=backend_port,
            ecds_dir=str(state_dir / "ecds"), xds_dir=str(state_dir / "xds"),
            modules={name: str(module_dir / file) for name, file in modules.items()},
            bridge_module=str(module_dir / bridge) if bridge else None,
            access_log=str(state_dir / "logs" / "access.log"),
        )

    checks, layout, bootstrap = stage_files(project, flavor, layout_for)
    state = StackState(
        name=project.name, runtime="native", flavor=flavor, config_file=str(project.file),
        started=time.time(), gateway_port=gateway_port, admin_port=admin_port,
        backend_port=backend_port, control_port=control_port,
        plugins=[plugin_state(c, layout.modules[c.plugin.name]) for c in checks],
        extra={"layout": dataclasses.asdict(layout), "restart_key": restart_key(project),
               "services": svc.to_state(service_plans)},
    )
    return Plan(state=state, layout=layout, bootstrap=bootstrap,
                backend_config=state_dir / "backend.json", checks=checks)


def wait_ready(project: Project, state: StackState, plan: Plan, timeout: float,
               failed: Callable[[], None], log_source: Any = None) -> Any:
    """Wait for the readiness rule; `failed` and the gateway's output raise the classified error."""
    from ..classify import LogWatch
    from ..readiness import ReadyTarget, wait_until_ready

    log_file = project.state_dir / "logs" / "gateway.log"
    watch = LogWatch(log_source or log_file, [c.plugin.name for c in plan.checks], where=str(project.state_dir))

    def broken() -> None:
        failed()
        watch.raise_if_failed()

    from .services import from_state, ready_check

    plans = list(from_state(state.extra).values())
    target = ReadyTarget(
        extra_checks=[(lambda p=p: ready_check(p)) for p in plans],
        admin_url=state.admin_url, gateway_host="127.0.0.1", gateway_port=state.gateway_port,
        control_url=state.control_url, versions={plugin_filter_name(c.plugin): ecds_version(c) for c in plan.checks},
        failed=broken,
    )
    return wait_until_ready(target, timeout, log_hint="hlocal logs gateway")


def raise_exited(name: str, exit_info: dict, log_file: Path, state: StackState) -> None:
    """A component died during start: say why, from its log."""
    from ..classify import classify_exit

    raise classify_exit(name, exit_info, log_file, [p.name for p in state.plugins])
