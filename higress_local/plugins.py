"""Inspect each plugin module, decide whether the gateway can run it, and stage what it loads."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Plugin, Project
from .errors import PluginError


@dataclass
class PluginCheck:
    """One plugin: what its module is and what the chosen gateway makes of it."""

    plugin: Plugin
    info: Any  # wasm.ModuleInfo
    compat: Any  # wasm.Compatibility
    served: bytes = b""
    elsewhere: dict[str, bool] = field(default_factory=dict)  # flavor -> runnable there
    _sha: str = field(default="", repr=False)
    _sha_of: bytes | None = field(default=None, repr=False)

    @property
    def served_sha256(self) -> str:
        # Hashing a multi-megabyte module is not free, and this is read several times per reload.
        if self._sha_of is not self.served:
            self._sha, self._sha_of = hashlib.sha256(self.served).hexdigest(), self.served
        return self._sha

    def staged_name(self) -> str:
        """Content-addressed: a new build gets a new file next to the old one."""
        return f"{self.plugin.name}-{self.served_sha256[:16]}.wasm"

    def to_dict(self) -> dict[str, Any]:
        info, compat = self.info, self.compat
        return {
            "name": self.plugin.name,
            "wasm": str(self.plugin.wasm),
            "size": info.size,
            "sha256": info.sha256,
            "abi": info.abi_version,
            "host_functions": list(info.host_functions),
            "foreign_functions": list(getattr(info, "foreign_candidates", ())),
            "phase": self.plugin.phase,
            "priority": self.plugin.priority,
            "flavor": compat.flavor,
            "runnable": compat.runnable,
            "adaptations": list(compat.adaptations),
            "problems": list(compat.problems),
            "notes": list(getattr(compat, "notes", [])),
            "runs_on": self.runs_on(),
        }

    def runs_on(self) -> dict[str, bool]:
        """Where this module can run: the native runtime has only stock Envoy."""
        envoy = self.elsewhere.get("envoy", False)
        return {"native (stock Envoy)": envoy, "docker, flavor envoy": envoy,
                "docker, flavor higress": self.elsewhere.get("higress", False)}


@dataclass
class CheckReport:
    flavor: str
    plugins: list[PluginCheck] = field(default_factory=list)
    chain: list[dict[str, Any]] = field(default_factory=list)  # filters in the order requests meet them
    routes: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def runnable(self) -> bool:
        return all(p.compat.runnable for p in self.plugins)

    def to_dict(self) -> dict[str, Any]:
        return {"flavor": self.flavor, "runnable": self.runnable, "plugins": [p.to_dict() for p in self.plugins],
                "chain": self.chain, "routes": self.routes, "services": self.services, "notes": self.notes}


def check_plugin(plugin: Plugin, flavor: str) -> PluginCheck:
    """Read and inspect one module; an unreadable or invalid file raises PluginError."""
    from . import wasm

    info = wasm.inspect_file(plugin.wasm, label=f"plugin {plugin.name!r}")
    elsewhere = {f: wasm.check_compatibility(info, f).runnable for f in ("envoy", "higress")}
    return PluginCheck(plugin=plugin, info=info, compat=wasm.check_compatibility(info, flavor), elsewhere=elsewhere)


def check_project(project: Project, flavor: str) -> CheckReport:
    """Every plugin's verdict, plus the chain, routes and services as the gateway will get them."""
    from .render.envoy import BACKEND_CLUSTER, BRIDGE_FILTER, plugin_filter_name

    report = CheckReport(flavor=flavor, plugins=[check_plugin(p, flavor) for p in project.plugins])
    if flavor == "envoy" and project.plugins:
        report.chain.append({"filter": BRIDGE_FILTER, "what": "hlocal's property bridge (route_name, cluster_name)"})
    for plugin in project.chain():
        report.chain.append({"filter": plugin_filter_name(plugin), "plugin": plugin.name,
                             "phase": plugin.phase, "priority": plugin.priority})
    report.chain.append({"filter": "envoy.filters.http.router", "what": "routes to the upstream"})
    for route in project.routes:
        match = ({"path": route.path} if route.path else {"regex": route.regex} if route.regex
                 else {"prefix": route.prefix})
        target = project.service(route.service).cluster_name() if route.service else BACKEND_CLUSTER
        report.routes.append({"name": route.name, "domains": list(route.domains), **match,
                              "headers": route.headers, "cluster": target, "timeout_ms": route.timeout_ms})
    for service in project.services:
        report.services.append({"name": service.name, "kind": service.kind, "cluster": service.cluster_name()})
    redis = [s.name for s in project.services if s.kind == "redis"]
    if redis and flavor == "envoy":
        report.notes.append(f"redis service(s) {', '.join(redis)} start, but Redis calls need the Higress gateway: "
                            "stock Envoy has no proxy_redis_* host functions (use --runtime docker with flavor higress)")
    return report


def require_runnable(report: CheckReport) -> None:
    """Stop before anything starts when a plugin cannot run on the chosen gateway."""
    for check in report.plugins:
        if not check.compat.runnable:
            problems = "; ".join(check.compat.problems)
            hint = (
                "this plugin needs the Higress gateway: use `--runtime docker` with gateway.flavor: higress"
                if report.flavor == "envoy"
                else "rebuild the plugin with the Higress wasm-go SDK"
            )
            raise PluginError(f"plugin {check.plugin.name!r} ({check.plugin.wasm}) cannot run on {_flavor_name(report.flavor)}: {problems}", hint)


def _flavor_name(flavor: str) -> str:
    return "stock Envoy" if flavor == "envoy" else "the Higress gateway"


def prepare(check: PluginCheck, flavor: str) -> PluginCheck:
    """Produce the bytes the gateway loads: an ABI-adapted copy on stock Envoy, else the file as is."""
    from . import wasm

    data = check.plugin.wasm.read_bytes()
    check.served = wasm.adapt_for_stock_envoy(data) if flavor == "envoy" else data
    return check


def stage(check: PluginCheck, modules_dir: Path) -> Path:
    """Write the served bytes under their content-addressed name (atomically, once)."""
    modules_dir.mkdir(parents=True, exist_ok=True)
    target = modules_dir / check.staged_name()
    if not target.exists():
        tmp = modules_dir / f".{target.name}.{os.getpid()}"
        tmp.write_bytes(check.served)
        os.replace(tmp, target)
    return target
