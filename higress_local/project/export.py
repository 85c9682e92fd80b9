"""`hlocal export higress`: the project's plugins and services as Higress resources for Kubernetes.

Each plugin becomes a WasmPlugin whose `defaultConfig` + `matchRules` the Higress controller turns back
into exactly the JSON hlocal gave the plugin locally (`Plugin.configuration()`); each service that
Higress can discover becomes the resource that yields the same Envoy cluster name the plugin calls.

Sources (alibaba/higress unless noted):
- WasmPlugin fields: api/extensions/v1alpha1/wasmplugin.proto, helm/core/crds/customresourcedefinitions.gen.yaml.
- matchRules -> `_rules_`: pkg/ingress/config/ingress_config.go `convertIstioWasmPlugin` (ingress ->
  `_match_route_`, service -> `_match_service_`, domain -> `_match_domain_`, the rule's config merged in;
  only WasmPlugins and the McpBridge named `default` in the controller's own namespace are read).
- Route names: pkg/ingress/kube/common/tool.go `GenerateUniqueRouteName`: an Ingress in the Higress
  namespace gives routes named NAME, any other NAMESPACE/NAME; `_match_route_` compares exactly.
- Registries -> hosts: registry/direct/watcher.go (static, dns: NAME.TYPE, port = registry port),
  registry/consul/watcher.go (SVC.DC.consul), registry/nacos/v2/watcher.go (SVC.GROUP.NS.nacos, `_` -> `-`).
- Rule categories: higress-group/wasm-go pkg/matcher/rule_matcher.go (`_match_route_prefix_` is used
  only when a rule has no route, domain or service match).
- spec.url of a pushed plugin: `oci://REGISTRY/REPO@sha256:...` (what `hlocal push` recorded in
  .hlocal/<project>/pushed.json); istio/istio pkg/wasm/cache.go takes a digest in the URL as the checksum,
  so the cluster runs exactly the module that was pushed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from .. import __version__
from ..errors import ConfigError
from ..config.models import Plugin, Project, Rule, Service
from .push import ImageRef, PushedImage, load_pushed

WASMPLUGIN_API = "extensions.higress.io/v1alpha1"
MCPBRIDGE_API = "networking.higress.io/v1"
SERVICEENTRY_API = "networking.istio.io/v1alpha3"
DEFAULT_NAMESPACE = "higress-system"
MCPBRIDGE_NAME = "default"  # the only McpBridge the controller reconciles
URL_PLACEHOLDER = "oci://REGISTRY/{name}:VERSION"
ENDPOINT_PLACEHOLDER = "SET-ME-IP:PORT"
DOMAIN_PLACEHOLDER = "SET-ME.example.com"
CONSUL_PLACEHOLDER = "SET-ME-CONSUL-ADDRESS"
NACOS_PLACEHOLDER = "SET-ME-NACOS-ADDRESS"
# What registry/direct/watcher.go accepts as a dns registry's domain.
_DNS_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+[a-zA-Z]{2,6}")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


@dataclass
class ExportResult:
    """The exported resources (file name, resource), what must be fixed before applying, and notes."""

    documents: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        """All resources as one multi-document YAML stream (for stdout or `kubectl apply -f -`)."""
        return "".join(f"---\n{_dump(resource)}" for _, resource in self.documents)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write one file per resource into out_dir (created if missing); return the paths."""
        directory = Path(out_dir)
        directory.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, resource in self.documents:
            path = directory / name
            path.write_text(_dump(resource), encoding="utf-8")
            paths.append(path)
        return paths


def export_higress(project: Project, *, namespace: str = DEFAULT_NAMESPACE, urls: dict[str, str] | None = None,
                   default_url: str | None = None, pushed: Mapping[str, PushedImage] | None = None) -> ExportResult:
    """Render the project's plugins as WasmPlugins and its services as McpBridge registries / ServiceEntries.

    A plugin's spec.url is, in order: its entry in `urls` (oci://, https://, file://), the digest URL of
    its last `hlocal push` (`pushed`; None reads .hlocal/<project>/pushed.json), `default_url` (may
    contain `{name}`), else a placeholder. `namespace` must be the Higress controller's namespace.
    """
    urls = dict(urls or {})
    pushed = load_pushed(project) if pushed is None else pushed
    if not _DNS_LABEL.fullmatch(namespace):
        raise ConfigError(f"namespace {namespace!r} is not a valid Kubernetes namespace name",
                          "use lowercase letters, digits and -, e.g. higress-system")
    known = [plugin.name for plugin in project.plugins]
    unknown = sorted(set(urls) - set(known))
    if unknown:
        raise ConfigError(f"a URL is given for unknown plugin(s): {', '.join(unknown)}",
                          f"plugins: {', '.join(known) or 'none'}")
    result = ExportResult()
    metadata = _Metadata(project, namespace)
    routes: set[str] = set()
    for plugin in project.plugins:
        url = urls.get(plugin.name)
        if url is None and plugin.name in pushed:
            url = _pushed_url(plugin, pushed[plugin.name], result)
        if url is None and default_url:
            url = default_url.replace("{name}", plugin.name)
        result.documents.append((f"wasmplugin-{_k8s_name(plugin.name)}.yaml",
                                 _wasm_plugin(plugin, url, metadata, result, routes)))
    if namespace != DEFAULT_NAMESPACE:
        result.notes.append(f"namespace {namespace}: Higress reads WasmPlugins and the McpBridge only from its "
                            "own namespace; make sure it was installed there")
    for route in sorted(r for r in routes if "/" not in r):
        result.notes.append(f"route {route!r} is matched as the Higress route of Ingress {route!r} in namespace "
                            f"{namespace}; for an Ingress in another namespace name it NAMESPACE/{route}")
    _export_services(project.services, metadata, result)
    return result


@dataclass(frozen=True)
class _Metadata:
    project: Project
    namespace: str

    def of(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": {"hlocal.io/project": _k8s_name(self.project.name)},
            "annotations": {"hlocal.io/exported-by": f"hlocal {__version__} from {self.project.file.name}"},
        }


def _wasm_plugin(plugin: Plugin, url: str | None, metadata: _Metadata, result: ExportResult,
                 routes: set[str]) -> dict[str, Any]:
    name = _k8s_name(plugin.name)
    if name != plugin.name:
        result.notes.append(f"plugin {plugin.name!r} is exported as WasmPlugin {name!r} (Kubernetes names allow no _)")
    if url is None:
        url = URL_PLACEHOLDER.format(name=plugin.name)
        result.warnings.append(f"plugin {plugin.name!r}: spec.url is the placeholder {url}; push the module (an OCI "
                               "image, or a file served over https) and pass its URL")
    rules = []
    for index, rule in enumerate(plugin.rules):
        match_rule = _match_rule(plugin, index, rule, result)
        if match_rule is not None:
            rules.append(match_rule)
            routes.update(rule.match_route)
    # Without global keys the plugin only runs where a rule matches, locally and on Higress alike; saying
    # so keeps Higress from installing an empty global config (ingress_config.go convertIstioWasmPlugin).
    disabled = not plugin.config and bool(plugin.rules)
    if disabled and not rules:
        result.warnings.append(f"plugin {plugin.name!r} has no global config and no rule Higress can express: "
                               "Higress will not install it")
    spec: dict[str, Any] = {
        "url": url,
        "phase": plugin.phase,
        "priority": plugin.priority,
        "failStrategy": "FAIL_OPEN" if plugin.failure_policy == "FAIL_OPEN" else "FAIL_CLOSE",  # fail_open implies it
        "defaultConfigDisable": disabled,
        "defaultConfig": dict(plugin.config),
    }
    if rules:
        spec["matchRules"] = rules
    return {"apiVersion": WASMPLUGIN_API, "kind": "WasmPlugin", "metadata": metadata.of(name), "spec": spec}


def _pushed_url(plugin: Plugin, image: PushedImage, result: ExportResult) -> str:
    """The digest URL `hlocal push` recorded, with a warning when the module changed since."""
    result.notes.append(f"plugin {plugin.name!r}: spec.url is the image pushed to {image.reference} at "
                        f"{image.pushed_at} (hlocal push); --url {plugin.name}=URL overrides it")
    try:
        current = hashlib.sha256(plugin.wasm.read_bytes()).hexdigest()
    except OSError:
        current = None
    if current is not None and current != image.wasm_sha256:
        result.warnings.append(f"plugin {plugin.name!r}: {plugin.wasm.name} changed since it was pushed to "
                               f"{image.reference}; run `hlocal push {plugin.name} oci://{image.reference}` again")
    ref = ImageRef.parse(f"oci://{image.reference}")
    if ref.loopback:
        result.notes.append(f"plugin {plugin.name!r}: registry {ref.registry} is on this machine; the gateway's "
                            "pods must reach it under that address, or push to a registry the cluster can reach")
    return image.url


def _match_rule(plugin: Plugin, index: int, rule: Rule, result: ExportResult) -> dict[str, Any] | None:
    """The matchRule Higress turns into this rule's `_rules_` item; None when it has no equivalent."""
    where = f"plugin {plugin.name!r} rules[{index}]"
    if rule.match_route_prefix and not (rule.match_route or rule.match_domain or rule.match_service):
        result.warnings.append(f"{where}: match_route_prefix has no WasmPlugin equivalent (matchRules take "
                               "ingress, domain or service); the rule is not exported - list the routes in "
                               "match_route instead")
        return None
    if rule.match_route_prefix:
        result.notes.append(f"{where}: match_route_prefix dropped; wasm-go ignores it when the rule also "
                            "matches a route, domain or service, so behaviour is unchanged")
    match_rule: dict[str, Any] = {}
    for key, values in (("ingress", rule.match_route), ("domain", rule.match_domain),
                        ("service", rule.match_service)):
        if values:
            match_rule[key] = list(values)
    match_rule["config"] = dict(rule.config)  # older controllers reject a rule without config
    return match_rule


# ---- services ------------------------------------------------------------------------------------


def _export_services(services: tuple[Service, ...], metadata: _Metadata, result: ExportResult) -> None:
    registries: list[dict[str, Any]] = []
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    entries: list[tuple[str, dict[str, Any]]] = []
    mocked = [s.name for s in services if s.is_mock]
    for index, service in enumerate(services):
        where = f"services[{index}] {service.name!r} ({service.cluster_name()})"
        target = _discoverable(service)
        if target is None:
            entries.append(_service_entry(service, metadata, where, result))
        elif target.kind == "k8s":
            result.notes.append(f"{where}: a Kubernetes Service {target.host} in namespace "
                                f"{target.namespace or 'default'} with port {target.port} yields this cluster; "
                                "nothing to export")
            _check_version(target, where, result)
        else:
            _add_registry(target, service, where, registries, by_key, result)
    if registries:
        bridge = {"apiVersion": MCPBRIDGE_API, "kind": "McpBridge", "metadata": metadata.of(MCPBRIDGE_NAME),
                  "spec": {"registries": registries}}
        result.documents.append((f"mcpbridge-{MCPBRIDGE_NAME}.yaml", bridge))
        result.warnings.append(f"McpBridge {MCPBRIDGE_NAME!r} is the only one Higress reads; if the cluster already "
                               "has one, merge these registries into it instead of applying over it")
    result.documents.extend(entries)
    if mocked:
        result.notes.append(f"services mocked locally ({', '.join(mocked)}): stubs, url and image are not exported; "
                            "the real backends must exist")


def _discoverable(service: Service) -> Service | None:
    """The service as the kind Higress discovers it by (fqdn/redis names like X.dns are registry services);
    None for a plain external FQDN."""
    if service.kind not in ("fqdn", "redis"):
        return service
    parts = service.host.split(".")
    candidate = None
    if len(parts) >= 2 and parts[-1] in ("static", "dns"):
        candidate = dataclasses.replace(service, kind=parts[-1], host=".".join(parts[:-1]), domain="")
    elif len(parts) >= 3 and parts[-1] == "consul":
        candidate = dataclasses.replace(service, kind="consul", host=".".join(parts[:-2]), datacenter=parts[-2])
    elif len(parts) >= 4 and parts[-1] == "nacos":
        candidate = dataclasses.replace(service, kind="nacos", host=".".join(parts[:-3]), group=parts[-3],
                                        namespace=parts[-2], version="")
    elif len(parts) >= 5 and parts[-3:] == ["svc", "cluster", "local"]:
        candidate = dataclasses.replace(service, kind="k8s", host=".".join(parts[:-4]), namespace=parts[-4],
                                        version="")
    if candidate is not None and candidate.cluster_name() == service.cluster_name():
        return candidate
    return None


def _add_registry(target: Service, service: Service, where: str, registries: list[dict[str, Any]],
                  by_key: dict[tuple[str, str], dict[str, Any]], result: ExportResult) -> None:
    if "_" in target.host and target.kind in ("consul", "nacos"):
        result.warnings.append(f"{where}: Higress replaces _ with - in discovered host names; the plugin "
                               "must call the service by the hyphenated name")
    if target.kind in ("static", "dns"):
        wanted = _direct_registry(target, service, where, result)
        key = (target.kind, target.host)
        if key in by_key:
            if by_key[key] != wanted:
                result.warnings.append(f"{where}: registry {target.kind}/{target.host} is already exported with "
                                       "another port or address; one registry has one port - rename one service")
            return
        by_key[key] = wanted
        registries.append(wanted)
        return
    if target.kind == "consul":
        key = ("consul", target.datacenter)
        if key not in by_key:
            by_key[key] = {"type": "consul", "name": f"consul-{target.datacenter}", "domain": CONSUL_PLACEHOLDER,
                           "port": 8500, "consulDatacenter": target.datacenter}
            registries.append(by_key[key])
            result.warnings.append(f"McpBridge registry consul-{target.datacenter}: set domain and port to the "
                                   "Consul server's address")
        result.notes.append(f"{where}: discovered from Consul datacenter {target.datacenter}; Consul service "
                            f"{target.host} must be registered with port {target.port}")
        return
    # nacos: one registry per namespace id watches all the groups listed (registry/nacos/v2/watcher.go).
    group = target.group or "DEFAULT-GROUP"
    nacos_group = "DEFAULT_GROUP" if group == "DEFAULT-GROUP" else group  # the cluster name hyphenates it
    key = ("nacos", target.namespace)
    if key not in by_key:
        by_key[key] = {"type": "nacos2", "name": f"nacos-{target.namespace}", "domain": NACOS_PLACEHOLDER,
                       "port": 8848, "nacosNamespaceId": target.namespace, "nacosGroups": []}
        registries.append(by_key[key])
        result.warnings.append(f"McpBridge registry nacos-{target.namespace}: set domain and port to the Nacos "
                               "server's address (type nacos2 speaks Nacos 2.x; use nacos for a 1.x server)")
    if nacos_group not in by_key[key]["nacosGroups"]:
        by_key[key]["nacosGroups"].append(nacos_group)
    if "_" in target.namespace:
        result.warnings.append(f"{where}: Higress writes namespace {target.namespace!r} with - for _ in the host "
                               "name, wasm-go does not: the names will not match; use a namespace id without _")
    result.notes.append(f"{where}: discovered from Nacos namespace {target.namespace}, group {nacos_group}; "
                        f"service {target.host} must be registered with port {target.port}")
    _check_version(target, where, result)


def _direct_registry(target: Service, service: Service, where: str, result: ExportResult) -> dict[str, Any]:
    """A static or dns registry: host NAME.TYPE, cluster port = the registry's port (registry/direct/watcher.go)."""
    if target.kind == "static":
        # Several urls: registry/direct/watcher.go splits a static domain on "," into IP:PORT endpoints.
        found = [_ip_endpoint(f"http://{e.host}") for e in service.urls] or [_ip_endpoint(service.url)]
        endpoint = ",".join(found) if all(found) else None  # type: ignore[arg-type]
        if endpoint is None:
            endpoint = ENDPOINT_PLACEHOLDER
            result.warnings.append(f"{where}: set the static registry's domain to the backend's IP:PORT list "
                                   f"(now {ENDPOINT_PLACEHOLDER})")
        return {"type": "static", "name": target.host, "domain": endpoint, "port": target.port}
    domain = target.domain
    if not domain:
        domain = DOMAIN_PLACEHOLDER
        result.warnings.append(f"{where}: set the dns registry's domain to the name it resolves (now {domain})")
    elif not _DNS_DOMAIN.fullmatch(domain):
        result.warnings.append(f"{where}: Higress rejects dns domain {domain!r} (it wants a public-style name "
                               "like api.example.com)")
    return {"type": "dns", "name": target.host, "domain": domain, "port": target.port}


def _service_entry(service: Service, metadata: _Metadata, where: str,
                   result: ExportResult) -> tuple[str, dict[str, Any]]:
    """An external FQDN: an Istio ServiceEntry for host:port gives cluster outbound|PORT||HOST."""
    name = _k8s_name(service.name)
    protocol = "TCP" if service.kind == "redis" else "HTTP"
    result.warnings.append(
        f"{where}: exported as Istio ServiceEntry {name!r}; Higress reads it only when installed with "
        "--set global.enableIstioAPI=true (and the Istio CRDs); otherwise declare a McpBridge dns registry and "
        "call NAME.dns from the plugin")
    entry = {
        "apiVersion": SERVICEENTRY_API,
        "kind": "ServiceEntry",
        "metadata": metadata.of(name),
        "spec": {
            "hosts": [service.host],
            "ports": [{"number": service.port, "name": f"{protocol.lower()}-{service.port}", "protocol": protocol}],
            "location": "MESH_EXTERNAL",
            "resolution": "DNS",
        },
    }
    return f"serviceentry-{name}.yaml", entry


def _check_version(target: Service, where: str, result: ExportResult) -> None:
    if target.version:
        result.warnings.append(f"{where}: version {target.version!r} is a subset; it needs a DestinationRule "
                               "subset of that name, which is not exported")


def _ip_endpoint(url: str | None) -> str | None:
    """IP:PORT from a service url when it names a routable IP (a loopback address is only local)."""
    if url is None:
        return None
    parts = urlsplit(url)
    try:
        address = ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return None
    # static endpoints are split on ":" (registry/direct/watcher.go), so IPv6 cannot be written there
    if address.version != 4 or address.is_loopback or address.is_unspecified:
        return None
    return f"{address}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _k8s_name(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "hlocal"


def _dump(resource: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(resource, sort_keys=False, default_flow_style=False, allow_unicode=True)
