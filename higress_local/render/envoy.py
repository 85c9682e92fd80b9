"""Pure rendering: a Project plus a layout become Envoy bootstrap and ECDS documents."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from ..config import Plugin, Project, Route

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
TYPED_EXTENSION = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"
V8 = "envoy.wasm.runtime.v8"
BRIDGE_FILTER = "hlocal.bridge"
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
    bridge_module: str | None = None
    access_log: str = "/dev/stdout"

    @property
    def stock_envoy(self) -> bool:
        return self.flavor == "envoy"


def plugin_filter_name(plugin: Plugin) -> str:
    """The HTTP filter (and ECDS resource) name of a plugin."""
    return f"hlocal.plugin.{plugin.name}"


def ecds_file_name(plugin: Plugin) -> str:
    return f"{plugin.name}.json"


def plugin_configuration_json(plugin: Plugin) -> str:
    """The configuration string a plugin receives: stable key order, so its hash is stable."""
    return json.dumps(plugin.configuration(), sort_keys=True, separators=(",", ":"))


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
        "fail_open": plugin.fail_open,
    }
    if layout.stock_envoy:
        # Higress's ABI 0.2.100 lets header callbacks pause the stream; stock Envoy needs the opt-in.
        config["allow_on_headers_stop_iteration"] = True
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


def render_bridge_filter(layout: Layout) -> dict[str, Any]:
    """The property bridge: copies xds.route_name/cluster_name to where wasm-go reads them."""
    return {
        "name": BRIDGE_FILTER,
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


def render_http_filters(project: Project, layout: Layout) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if layout.stock_envoy and project.plugins:
        filters.append(render_bridge_filter(layout))
    for plugin in project.chain():
        filters.append(
            {
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
        )
    filters.append({"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}})
    return filters


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


def render_virtual_hosts(project: Project) -> list[dict[str, Any]]:
    """Group routes by their domain list, keeping the order routes were written in."""
    groups: dict[tuple[str, ...], list[Route]] = {}
    for route in project.routes:
        groups.setdefault(route.domains, []).append(route)
    hosts = []
    for index, (domains, routes) in enumerate(groups.items()):
        hosts.append(
            {
                "name": f"vh{index}" if len(groups) > 1 else "hlocal",
                "domains": list(domains),
                "routes": [render_route(r, project) for r in routes],
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
        address, port = layout.services[service.name]
        clusters.append(render_cluster(service.cluster_name(), address, int(port)))
    return [{"@type": CLUSTER_TYPE, **cluster} for cluster in clusters]


def render_discovery(resources: list[dict[str, Any]], version: str) -> dict[str, Any]:
    """A DiscoveryResponse as Envoy reads it from a watched file."""
    return {"version_info": version, "resources": resources}


def render_bootstrap(project: Project, layout: Layout) -> dict[str, Any]:
    """The Envoy bootstrap: admin, one listener with the plugin chain; routes and clusters from watched files."""
    hcm = {
        "@type": HCM_TYPE,
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "rds": {"route_config_name": ROUTE_CONFIG,
                "config_source": _file_source(f"{layout.xds_dir}/{ROUTES_FILE}", layout.xds_dir)},
        "http_filters": render_http_filters(project, layout),
        "access_log": [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": layout.access_log,
                },
            }
        ],
    }
    return {
        "node": {"id": f"hlocal-{project.name}", "cluster": f"hlocal-{project.name}"},
        "admin": {"address": _socket(layout.admin_address, layout.admin_port)},
        "dynamic_resources": {"cds_config": _file_source(f"{layout.xds_dir}/{CLUSTERS_FILE}", layout.xds_dir)},
        "static_resources": {
            "listeners": [
                {
                    "name": "gateway",
                    "address": _socket(layout.listen_address, layout.listen_port),
                    "filter_chains": [
                        {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
                    ],
                }
            ],
        },
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
