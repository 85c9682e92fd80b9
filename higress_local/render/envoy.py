"""Pure rendering: a Project plus a layout become Envoy bootstrap and ECDS documents."""

from __future__ import annotations

import copy
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from ..config.project import Plugin, Project, Route
from ..config.order import higress_json
from .endpoints import override_header_guards, render_endpoints_cluster, service_endpoints
from .fidelity import (ACCESS_LOG_FORMAT, PIN_FILTER_STATE, UPSTREAM_BUFFER_LIMIT, XFF_NUM_TRUSTED_HOPS,
                       access_log_formatters, access_log_text, higress_listener_options, higress_stats_config,
                       listener_buffer_limit)
from .mcp_session import MCP_SESSION_CLUSTER, render_session_routes, session_virtual_host_options

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TYPED_EXTENSION = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
HEADER_MUTATION_TYPE = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
FILE_ACCESS_LOG_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog"
TLS_CONTEXT_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
TLS_INSPECTOR_TYPE = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
V8 = "envoy.wasm.runtime.v8"
BRIDGE_FILTER = "hlocal.bridge"
REFRESH_FILTER = "hlocal.refresh"
TAP_TYPE = "type.googleapis.com/envoy.extensions.filters.http.tap.v3.Tap"
TAP_CLIENT = "hlocal.tap.client"
TAP_UPSTREAM = "hlocal.tap.upstream"
TAP_CONFIG_ID = "hlocal.tap"  # both taps' admin config_id (inspect/tapstream.py attaches to it)
ROUTE_CONFIG = "hlocal"
ROUTE_TYPE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
CLUSTER_TYPE = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ROUTES_FILE = "routes.json"
CLUSTERS_FILE = "clusters.json"
# Higress names service clusters the way wasm-go's FQDNCluster does; the default backend too,
# so `_match_service_` rules and RouteCluster calls see the shape they see in production.
BACKEND_CLUSTER = "outbound|80||backend"


@dataclass(frozen=True)
class Layout:
    """Where things are as the gateway sees them (host paths natively, mount paths in a container)."""

    flavor: str  # "envoy" (stock, needs bridging) or "higress"
    listen_address: str
    listen_port: int
    admin_address: str
    admin_port: int
    backend_address: str
    backend_port: int
    ecds_dir: str
    xds_dir: str  # routes.json and clusters.json, watched: route and cluster changes reload in place
    modules: dict[str, str] = field(default_factory=dict)  # plugin name -> module path
    services: dict[str, list] = field(default_factory=dict)  # service name -> [address, port]
    replicas: dict[str, list] = field(default_factory=dict)  # mock service -> [[address, port], ...] per replica
    bridge_module: str | None = None
    access_log: str = "/dev/stdout"
    # gateway.tls: the https listener and the certificate it serves (tls.ensure_certificate writes them)
    tls_port: int | None = None  # None: no https listener
    tls_cert: str | None = None
    tls_key: str | None = None
    # The request inspector (higress_local/inspect): its folder (None: no capture; the two taps stream
    # to the collector over the admin port), and the bytes of each body the collector asks them for.
    inspect_dir: str | None = None
    inspect_body_bytes: int = 65536
    mcp_session_port: int | None = None  # gateway.mcp_server: hlocal's session process (None: off)

    @property
    def stock_envoy(self) -> bool:
        return self.flavor == "envoy"


def plugin_filter_name(plugin: Plugin) -> str:
    """The HTTP filter (and ECDS resource) name of a plugin."""
    return f"hlocal.plugin.{plugin.name}"


def ecds_file_name(plugin: Plugin) -> str:
    return f"{plugin.name}.json"


def plugin_configuration_json(plugin: Plugin) -> str:
    """The configuration string a plugin receives, as Higress delivers it (config/order.py: keys sorted)."""
    return higress_json(plugin.configuration())


ENVOY_FAILURE_POLICY = {"FAIL_RELOAD": "FAIL_RELOAD", "FAIL_CLOSED": "FAIL_CLOSED", "FAIL_OPEN": "FAIL_IGNORE"}


def render_wasm_filter(plugin: Plugin, module_path: str, layout: Layout) -> dict[str, Any]:
    """The typed Wasm filter config for one plugin."""
    config: dict[str, Any] = {
        "name": plugin.name,
        "root_id": plugin.name,
        "vm_config": {
            "vm_id": plugin.name,
            "runtime": V8,
            "code": {"local": {"filename": module_path}},
        },
        "configuration": {"@type": STRING_VALUE, "value": plugin_configuration_json(plugin)},
    }
    if layout.stock_envoy:
        # Higress's ABI 0.2.100 lets header callbacks pause the stream; stock Envoy needs the opt-in.
        config["allow_on_headers_stop_iteration"] = True
        # After a trap Higress's Envoy builds a fresh VM for the next request (higress-group/envoy
        # wasm_filter.h createFilter: isFailed() -> rebuild); stock Envoy >= 1.33 does it with FAIL_RELOAD
        # (envoyproxy/envoy api/envoy/extensions/wasm/v3/wasm.proto FailurePolicy; it refuses fail_open
        # together with failure_policy, and names "open" FAIL_IGNORE).
        config["failure_policy"] = ENVOY_FAILURE_POLICY[plugin.failure_policy]
        if plugin.failure_policy == "FAIL_RELOAD":
            # Stock Envoy rebuilds a failed VM at most once per backoff interval (ReloadConfig) and fails
            # the requests in between; Higress rebuilds on the next request. With Envoy's default, 40 quick
            # requests after a trap still met the failed VM every other time (tests/integration/
            # test_crashes.py); at 0.1 s none did, while 1 ms made Envoy 1.40 drop connections.
            config["reload_config"] = {"backoff": {"base_interval": "0.1s", "max_interval": "1s"}}
    else:  # Higress's own Envoy: its fail_open, as Higress renders a WasmPlugin's failStrategy
        config["fail_open"] = plugin.fail_open
    return {"@type": WASM_TYPE, "config": config}


def render_ecds(plugin: Plugin, layout: Layout, version: str) -> dict[str, Any]:
    """The ECDS file for one plugin: a DiscoveryResponse holding one TypedExtensionConfig."""
    return {
        "version_info": version,
        "resources": [
            {
                "@type": TYPED_EXTENSION,
                "name": plugin_filter_name(plugin),
                "typed_config": render_wasm_filter(plugin, layout.modules[plugin.name], layout),
            }
        ],
    }


def render_bridge_filter(layout: Layout, name: str = BRIDGE_FILTER) -> dict[str, Any]:
    """One instance of the property bridge (bridge/bridge.wat); all instances share one VM."""
    return {
        "name": name,
        "typed_config": {
            "@type": WASM_TYPE,
            "config": {
                "name": BRIDGE_FILTER,
                "root_id": BRIDGE_FILTER,
                "vm_config": {
                    "vm_id": BRIDGE_FILTER,
                    "runtime": V8,
                    "code": {"local": {"filename": layout.bridge_module}},
                },
            },
        },
    }


def render_refresh_filter(name: str) -> dict[str, Any]:
    """A filter whose only effect is to make Envoy look the route up again.

    Stock Envoy clears the route cache when a plugin changes request headers but re-resolves the
    route only when a filter asks for it; `xds.route_name` meanwhile still names the old route.
    An empty header_mutation filter asks (it looks up its per-route config), so the bridge after it
    reads the route the request has now, as Higress's `route_name` does.
    """
    return {"name": name, "typed_config": {"@type": HEADER_MUTATION_TYPE, "mutations": {}}}


def render_plugin_filter(plugin: Plugin, layout: Layout) -> dict[str, Any]:
    return {
        "name": plugin_filter_name(plugin),
        "config_discovery": {
            "config_source": {
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": f"{layout.ecds_dir}/{ecds_file_name(plugin)}",
                    "watched_directory": {"path": layout.ecds_dir},
                },
            },
            "type_urls": [WASM_TYPE],
        },
    }


def render_http_filters(project: Project, layout: Layout) -> list[dict[str, Any]]:
    """The plugin chain; on stock Envoy a bridge before the first plugin and after every plugin.

    After each plugin: a route refresh, then a bridge that keeps route_name/cluster_name current
    (after a re-route) or, when the plugin called DisableReroute(), pins the route chosen before it.
    """
    filters: list[dict[str, Any]] = []
    if layout.inspect_dir:
        filters.append(render_tap_filter(TAP_CLIENT, layout))
    bridged = layout.stock_envoy and bool(project.plugins)
    if bridged:
        filters.append(render_bridge_filter(layout))
    for plugin in project.chain():
        filters.append(render_plugin_filter(plugin, layout))
        if bridged:
            filters.append(render_refresh_filter(f"{REFRESH_FILTER}.after.{plugin.name}"))
            filters.append(render_bridge_filter(layout, f"{BRIDGE_FILTER}.after.{plugin.name}"))
    if layout.inspect_dir:
        filters.append(render_tap_filter(TAP_UPSTREAM, layout))
    filters.append({"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}})
    return filters


def render_tap_filter(name: str, layout: Layout) -> dict[str, Any]:
    """One of the inspector's two taps (Envoy's HTTP tap filter, envoyproxy/envoy
    api/envoy/extensions/filters/http/tap/v3/tap.proto).

    The first filter sees the request as the client sent it and, encoding in reverse, the response
    as the client gets it; the one just before the router sees the request as it goes upstream and
    the response as the upstream sent it. Both are controlled from the admin port under one
    config_id (Envoy attaches one `POST /tap` session at a time): the collector attaches a streamed
    session (inspect/tapstream.py), so no file is written per request, and a tap with no session
    attached does nothing. Streaming matters: a buffered trace reads the header maps when the stream
    ends, after every filter changed them; a streamed one copies them as each filter sees them. Both
    taps use the stream id as trace id; which tap sent a segment follows from their order.
    """
    return {"name": name, "typed_config": {"@type": TAP_TYPE,
                                           "common_config": {"admin_config": {"config_id": TAP_CONFIG_ID}}}}


def render_route(route: Route, project: Project | None = None) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if route.path is not None:
        match["path"] = route.path
    elif route.regex is not None:
        match["safe_regex"] = {"regex": route.regex}
    else:
        match["prefix"] = route.prefix or "/"
    if route.headers:
        match["headers"] = [
            {"name": name, "string_match": {"exact": value}} for name, value in route.headers.items()
        ]
    action: dict[str, Any] = {"cluster": BACKEND_CLUSTER}
    timeout = route.timeout_ms
    if route.service is not None and project is not None:
        service = project.service(route.service)
        action["cluster"] = service.cluster_name()
        timeout = timeout if timeout is not None else service.timeout_ms
    if timeout is not None:
        action["timeout"] = f"{timeout / 1000:.3f}s"
    return {"name": route.name, "match": match, "route": action}


def render_pin_twin(route: Route, project: Project | None = None) -> dict[str, Any]:
    """A copy of `route` chosen whatever the path when the bridge pinned it (filter state).

    Same name and action, so the request keeps that route's cluster, timeout and route_name;
    matched on filter state, so nothing is added to the request the upstream sees.
    """
    twin = render_route(route, project)
    twin["match"] = {"prefix": "/", "filter_state": [
        {"key": PIN_FILTER_STATE, "string_match": {"exact": route.name}}]}
    return twin


def render_virtual_hosts(project: Project) -> list[dict[str, Any]]:
    """Group routes by their domain list, keeping the order routes were written in.

    Every virtual host starts with the pin twins of all routes (a plugin may also change the
    authority): they match only when the bridge pinned a route, never otherwise.
    """
    groups: dict[tuple[str, ...], list[Route]] = {}
    for route in project.routes:
        groups.setdefault(route.domains, []).append(route)
    twins = [render_pin_twin(r, project) for r in project.routes] if project.plugins else []
    mcp = project.gateway.mcp_server
    # gateway.mcp_server: Higress's mcp-session answers before any route (render/mcp_session.py).
    sessions = render_session_routes(mcp, [plugin_filter_name(p) for p in project.chain()]) if mcp else []
    hosts = []
    for index, (domains, routes) in enumerate(groups.items()):
        hosts.append(
            {
                "name": f"vh{index}" if len(groups) > 1 else "hlocal",
                "domains": list(domains),
                "routes": sessions + twins + [render_route(r, project) for r in routes],
                **(session_virtual_host_options() if mcp else {}),
            }
        )
    return hosts


def _file_source(path: str, directory: str) -> dict[str, Any]:
    return {"resource_api_version": "V3",
            "path_config_source": {"path": path, "watched_directory": {"path": directory}}}


def render_route_config(project: Project) -> dict[str, Any]:
    return {"@type": ROUTE_TYPE, "name": ROUTE_CONFIG, "virtual_hosts": render_virtual_hosts(project)}


def render_clusters(project: Project, layout: Layout) -> list[dict[str, Any]]:
    """The backend and every service, each under the cluster name wasm-go computes for it."""
    clusters = [render_cluster(BACKEND_CLUSTER, layout.backend_address, layout.backend_port)]
    for service in project.services:
        endpoints = service_endpoints(service, layout.replicas)
        if endpoints:
            clusters.append(render_endpoints_cluster(service, endpoints, stock_envoy=layout.stock_envoy))
            continue
        address, port = layout.services[service.name]
        clusters.append(render_cluster(service.cluster_name(), address, int(port)))
    if project.gateway.mcp_server and layout.mcp_session_port:
        clusters.append(render_cluster(MCP_SESSION_CLUSTER, "127.0.0.1", layout.mcp_session_port))
    # Higress's upstream connection buffer limit (fidelity.UPSTREAM_BUFFER_LIMIT) on every cluster.
    return [{"@type": CLUSTER_TYPE, **cluster, "per_connection_buffer_limit_bytes": UPSTREAM_BUFFER_LIMIT}
            for cluster in clusters]


def render_discovery(resources: list[dict[str, Any]], version: str) -> dict[str, Any]:
    """A DiscoveryResponse as Envoy reads it from a watched file."""
    return {"version_info": version, "resources": resources}


def render_access_log(project: Project, layout: Layout) -> list[dict[str, Any]]:
    """The access-log line into the stack's file, rendered from gateway.access_log_format (default:
    Higress's) the way Istio renders a TEXT accessLogFormat."""
    log_format = project.gateway.access_log_format or ACCESS_LOG_FORMAT
    text_format: dict[str, Any] = {"text_format_source": {"inline_string": access_log_text(log_format)}}
    formatters = access_log_formatters(log_format)
    if formatters:
        text_format["formatters"] = formatters
    return [{
        "name": "envoy.access_loggers.file",
        "typed_config": {"@type": FILE_ACCESS_LOG_TYPE, "path": layout.access_log, "log_format": text_format},
    }]


def render_connection_manager(project: Project, layout: Layout) -> dict[str, Any]:
    """The HTTP connection manager, configured as Higress configures its gateway's."""
    return {
        "@type": HCM_TYPE,
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        # Client address as on Higress (Istio gateway listeners): the peer address, trusting no
        # X-Forwarded-For hop, so a client cannot choose its own source.address.
        "use_remote_address": True,
        "xff_num_trusted_hops": XFF_NUM_TRUSTED_HOPS,
        **higress_listener_options()["http_connection_manager"],
        "rds": {"route_config_name": ROUTE_CONFIG,
                "config_source": _file_source(f"{layout.xds_dir}/{ROUTES_FILE}", layout.xds_dir)},
        "http_filters": render_http_filters(project, layout),
        "access_log": render_access_log(project, layout),
        **(override_header_guards(project.services) if layout.stock_envoy else {}),
    }


def render_listeners(project: Project, layout: Layout) -> list[dict[str, Any]]:
    """The plain listener and, with gateway.tls, an https one serving the same chain."""
    hcm = render_connection_manager(project, layout)
    # Higress's decoder buffer limit is the listener's (32 KiB by default), raised per request by
    # plugins; stock Envoy cannot raise it from Wasm, so there its listeners start high and the
    # adapted modules enforce the request's own limit (fidelity.listener_buffer_limit).
    buffer_limit = listener_buffer_limit(project.gateway.connection_buffer_limits, layout.stock_envoy)
    manager = {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
    listeners = [{
        "name": "gateway",
        "address": _socket(layout.listen_address, layout.listen_port),
        "per_connection_buffer_limit_bytes": buffer_limit,
        "filter_chains": [{"filters": [manager]}],
    }]
    if layout.tls_port is not None:
        listeners.append({
            "name": "gateway_tls",
            "address": _socket(layout.listen_address, layout.tls_port),
            "per_connection_buffer_limit_bytes": buffer_limit,
            # Records the client's SNI (%REQUESTED_SERVER_NAME%, connection.requested_server_name).
            "listener_filters": [{"name": "envoy.filters.listener.tls_inspector",
                                  "typed_config": {"@type": TLS_INSPECTOR_TYPE}}],
            "filter_chains": [{
                # Its own copy: a shared object would become a YAML alias in envoy.yaml.
                "filters": [copy.deepcopy(manager)],
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": {
                    "@type": TLS_CONTEXT_TYPE,
                    "common_tls_context": {
                        "alpn_protocols": ["h2", "http/1.1"],
                        "tls_certificates": [{"certificate_chain": {"filename": layout.tls_cert},
                                              "private_key": {"filename": layout.tls_key}}],
                    },
                }},
            }],
        })
    return listeners


def render_bootstrap(project: Project, layout: Layout) -> dict[str, Any]:
    """The Envoy bootstrap: admin, the listener(s) with the plugin chain; routes and clusters from watched files."""
    return {
        "node": {"id": f"hlocal-{project.name}", "cluster": f"hlocal-{project.name}"},
        # Higress's bootstrap tags (plugin_name, ai_route, cluster_name, ...) on /stats/prometheus.
        "stats_config": higress_stats_config(),
        "admin": {"address": _socket(layout.admin_address, layout.admin_port)},
        "dynamic_resources": {"cds_config": _file_source(f"{layout.xds_dir}/{CLUSTERS_FILE}", layout.xds_dir)},
        "static_resources": {"listeners": render_listeners(project, layout)},
    }


def render_cluster(name: str, address: str, port: int, *, connect_timeout: str = "2s") -> dict[str, Any]:
    is_ip = _is_ip(address)
    return {
        "name": name,
        "type": "STATIC" if is_ip else "STRICT_DNS",
        "connect_timeout": connect_timeout,
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket(address, port)}}]}],
        },
    }


def _is_ip(address: str) -> bool:
    """An IP literal (v4 or v6) needs no DNS; a STRICT_DNS cluster would try to resolve it."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _socket(address: str, port: int) -> dict[str, Any]:
    return {"socket_address": {"address": address, "port_value": port}}
