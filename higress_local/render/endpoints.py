"""A service with several endpoints (`urls`, or a mock's replicas): one cluster with a host per
endpoint, and the plugin's pinned host.

Higress's Envoy lets a plugin pin the upstream host (proxy_set_upstream_override_host). Stock Envoy
(>= 1.35) has the override-host load-balancing policy, which reads the host from a request header;
hlocal's adapted module writes the chosen address into that header (adapt/shim.wat), and without it
the cluster balances round robin, as Higress's default service balancing does.
Envoy: api/envoy/extensions/load_balancing_policies/override_host/v3/override_host.proto.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..config.models import Endpoint, Service

OVERRIDE_HOST_HEADER = "x-hlocal-upstream-host"  # keep in sync with shim.wat (upstream-hosts block)
OVERRIDE_HOST_POLICY = "envoy.load_balancing_policies.override_host"
OVERRIDE_HOST_TYPE = "type.googleapis.com/envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost"
ROUND_ROBIN_TYPE = "type.googleapis.com/envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin"
HEADER_MUTATION_TYPE = "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation"
UPSTREAM_CODEC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"


def _policy(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"policies": [{"typed_extension_config": {"name": name, "typed_config": config}}]}


def service_endpoints(service: Service, replicas: Mapping[str, list]) -> tuple[Endpoint, ...]:
    """The hosts a service lists one by one: its `urls`, or where its mock replicas listen
    (`replicas`: service name -> [[address, port], ...], as the runtime placed them) with mock.metrics."""
    if service.urls:
        return service.urls
    if not service.lists_hosts:
        return ()
    metrics = service.replica_metrics or ("",) * service.replicas
    return tuple(Endpoint(address=str(address), port=int(port), metrics=text)
                 for (address, port), text in zip(replicas.get(service.name) or (), metrics))


def render_endpoints_cluster(service: Service, endpoints: tuple[Endpoint, ...], *, stock_envoy: bool = True,
                             connect_timeout: str = "2s") -> dict[str, Any]:
    """The service's cluster: every endpoint a host; on stock Envoy a host named in the override
    header wins (Higress's own Envoy pins the plugin's host itself: there the cluster stays plain)."""
    name = service.cluster_name()
    hosts = [{"endpoint": {"address": {"socket_address": {"address": e.address, "port_value": e.port}}}}
             for e in endpoints]
    cluster = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": hosts}]},
    }
    if not stock_envoy:
        return cluster
    fallback = _policy("envoy.load_balancing_policies.round_robin", {"@type": ROUND_ROBIN_TYPE})
    return {
        **cluster,
        "load_balancing_policy": _policy(OVERRIDE_HOST_POLICY, {
            "@type": OVERRIDE_HOST_TYPE,
            "override_host_sources": [{"header": OVERRIDE_HOST_HEADER}],
            "fallback_policy": fallback,
        }),
        "typed_extension_protocol_options": _upstream_filters(),
    }


EARLY_MUTATION = "envoy.http.early_header_mutation.header_mutation"
EARLY_MUTATION_TYPE = ("type.googleapis.com/envoy.extensions.http.early_header_mutation.header_mutation.v3."
                       "HeaderMutation")


def uses_override_host(services: tuple[Service, ...]) -> bool:
    return any(s.lists_hosts for s in services)


def override_header_guards(services: tuple[Service, ...]) -> dict[str, Any]:
    """Connection-manager keys that keep the header hlocal's own: a client's copy is removed before
    any filter runs, so only the plugin can pin a host. Nothing when no service lists its hosts."""
    if not uses_override_host(services):
        return {}
    return {"early_header_mutation_extensions": [{"name": EARLY_MUTATION, "typed_config": {
        "@type": EARLY_MUTATION_TYPE, "mutations": [{"remove": OVERRIDE_HOST_HEADER}]}}]}


def _upstream_filters() -> dict[str, Any]:
    """The cluster's upstream filters drop the header once the host is chosen (a route's
    request_headers_to_remove runs before the load balancer reads it), so the endpoint never sees it."""
    remove = {"name": "envoy.filters.http.header_mutation", "typed_config": {
        "@type": HEADER_MUTATION_TYPE, "mutations": {"request_mutations": [{"remove": OVERRIDE_HOST_HEADER}]}}}
    codec = {"name": "envoy.filters.http.upstream_codec", "typed_config": {"@type": UPSTREAM_CODEC_TYPE}}
    return {HTTP_OPTIONS: {"@type": f"type.googleapis.com/{HTTP_OPTIONS}",
                           "explicit_http_config": {"http_protocol_options": {}},
                           "http_filters": [remove, codec]}}
