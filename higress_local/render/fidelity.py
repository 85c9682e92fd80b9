"""Behaviour of Higress's Envoy that the rendered stock-Envoy configuration reproduces.

The Higress facts the renderer needs (access-log format, stats tags, listener defaults) live here
next to the `Emulation` entries that say, for `hlocal check` and the README, how each one is
reproduced on stock Envoy and what still differs.
"""

from __future__ import annotations

from typing import Any

from ..emulation import Emulation

# Higress's access-log line: its mesh config `accessLogFormat` (TEXT encoding of a JSON object)
# as shipped by alibaba/higress helm/core/templates/configmap.yaml, with the `ai_log` field the
# AI plugins fill (%FILTER_STATE(wasm.ai_log:PLAIN)%), as in Higress's standalone/all-in-one
# higress-config and the ai-statistics README. Keys in Higress's order.
ACCESS_LOG_FORMAT = (
    '{"ai_log":"%FILTER_STATE(wasm.ai_log:PLAIN)%",'
    '"authority":"%REQ(X-ENVOY-ORIGINAL-HOST?:AUTHORITY)%",'
    '"bytes_received":"%BYTES_RECEIVED%",'
    '"bytes_sent":"%BYTES_SENT%",'
    '"downstream_local_address":"%DOWNSTREAM_LOCAL_ADDRESS%",'
    '"downstream_remote_address":"%DOWNSTREAM_REMOTE_ADDRESS%",'
    '"duration":"%DURATION%",'
    '"istio_policy_status":"%DYNAMIC_METADATA(istio.mixer:status)%",'
    '"method":"%REQ(:METHOD)%",'
    '"path":"%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",'
    '"protocol":"%PROTOCOL%",'
    '"request_id":"%REQ(X-REQUEST-ID)%",'
    '"requested_server_name":"%REQUESTED_SERVER_NAME%",'
    '"response_code":"%RESPONSE_CODE%",'
    '"response_flags":"%RESPONSE_FLAGS%",'
    '"route_name":"%ROUTE_NAME%",'
    '"start_time":"%START_TIME%",'
    '"trace_id":"%REQ(X-B3-TRACEID)%",'
    '"upstream_cluster":"%UPSTREAM_CLUSTER%",'
    '"upstream_host":"%UPSTREAM_HOST%",'
    '"upstream_local_address":"%UPSTREAM_LOCAL_ADDRESS%",'
    '"upstream_service_time":"%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",'
    '"upstream_transport_failure_reason":"%UPSTREAM_TRANSPORT_FAILURE_REASON%",'
    '"user_agent":"%REQ(USER-AGENT)%",'
    '"x_forwarded_for":"%REQ(X-FORWARDED-FOR)%"}'
)

# Tag extractors giving the AI plugins' metrics Higress's label names. The metric names are
# wasm-go's `route.<route>.upstream.<cluster>.model.<model>.consumer.<consumer>.metric.<name>`
# (alibaba/higress plugins/wasm-go/extensions/ai-statistics/main.go generateMetricName), defined
# through proxy_define_metric, which stock and Higress Envoy both prefix with `wasmcustom.`;
# Higress exports them as `route_upstream_model_consumer_metric_<name>{ai_route, ai_cluster,
# ai_model, ai_consumer}` (ai-statistics README). Group 1 is cut from the name, group 2 is the value.
STATS_TAGS: tuple[dict[str, str], ...] = (
    {"tag_name": "ai_route", "regex": r"^wasmcustom\.route\.((.+?)\.)upstream\."},
    {"tag_name": "ai_cluster", "regex": r"\.upstream\.((.+?)\.)model\."},
    {"tag_name": "ai_model", "regex": r"\.model\.((.+?)\.)(consumer|metric)\."},
    {"tag_name": "ai_consumer", "regex": r"\.consumer\.((.+?)\.)metric\."},
)

# Istio's gateway listeners trust no X-Forwarded-For hop unless gatewayTopology.numTrustedProxies
# is set; Higress installs none (alibaba/higress helm/core/values.yaml meshConfig).
XFF_NUM_TRUSTED_HOPS = 0

# What ai-proxy asks through `set_decoder_buffer_limit` (alibaba/higress
# plugins/wasm-go/extensions/ai-proxy: defaultMaxBodyBytes, 100 MiB), the largest the official
# plugins ask for; stock Envoy's listeners start here (see the "decoder_buffer_limit" entry).
STOCK_DECODER_BUFFER_LIMIT = 100 * 1024 * 1024

# The Wasm property the bridge pins a route with; route twins match its filter state.
PIN_FILTER_STATE = "wasm.hlocal_pin"


def higress_listener_options() -> dict[str, Any]:
    """Higress's downstream defaults (alibaba/higress pkg/ingress/kube/configmap/global.go:
    connectionBufferLimits 32768, maxRequestHeadersKb 60, idleTimeout 180 s, HTTP/2 windows)."""
    return {
        "per_connection_buffer_limit_bytes": 32768,
        "http_connection_manager": {
            "max_request_headers_kb": 60,
            "common_http_protocol_options": {"idle_timeout": "180s"},
            "stream_idle_timeout": "180s",
            "http2_protocol_options": {"max_concurrent_streams": 100, "initial_stream_window_size": 65535,
                                       "initial_connection_window_size": 1048576},
        },
    }


BEHAVIOUR_EMULATIONS: list[Emulation] = [
    Emulation(
        key="clear_route_cache",
        higress="a plugin that sets property clear_route_cache=off (wasm-go DisableReroute()) keeps the route "
                "chosen before it even when it rewrites :path or headers (higress-group/envoy wasm context)",
        hlocal="a bridge filter after each plugin sees clear_route_cache=off and, if the route changed under the "
               "plugin, pins the route chosen before it: it writes that route's name to filter state "
               "wasm.hlocal_pin and clears the route cache; rendered route twins (same name and action) match "
               "that filter state, so the request goes to that route's cluster with the rewritten path and "
               "nothing extra reaches the upstream",
        differs="once pinned, the route stays pinned for the rest of the chain: on Higress a later plugin without "
                "DisableReroute() that changes request headers makes Envoy pick the route again",
    ),
    Emulation(
        key="route_name",
        higress="route_name / cluster_name name the route and cluster the request has now, for every plugin, "
                "also after an earlier plugin re-routed it",
        hlocal="a route-refresh filter and a bridge after every plugin copy xds.route_name / xds.cluster_name "
               "into route_name / cluster_name, so the next plugin's _match_route_ / _match_service_ rules see "
               "the new route",
        differs="when a re-route leaves no route at all, route_name keeps the previous route's name (Higress "
                "answers NotFound)",
    ),
    Emulation(
        key="decoder_buffer_limit",
        higress="the request buffer limit is the listener's 32 KiB (downstream.connectionBufferLimits), raised per "
                "request when a plugin sets property set_decoder_buffer_limit (ai-proxy asks for 100 MiB)",
        hlocal="the listener buffer limit is 100 MiB for every request (the most an official plugin asks for)",
        differs="the limit is raised for all requests, not per request: a plugin that buffers a body above 32 KiB "
                "without SetRequestBodyBufferLimit() gets 413 on Higress but passes here, and a limit a plugin "
                "asks for is not enforced below 100 MiB. Stock Envoy has no Wasm call to raise it, and a plugin "
                "that pauses at the request headers buffers before any filter after it runs",
    ),
    Emulation(
        key="client_address",
        higress="the gateway uses the peer address as the client address and trusts no X-Forwarded-For hop "
                "(use_remote_address, xff_num_trusted_hops 0)",
        hlocal="the same settings on hlocal's listener: a client's X-Forwarded-For does not change source.address",
    ),
    Emulation(
        key="access_log",
        higress="one JSON line per request in Higress's accessLogFormat, with ai_log = filter state wasm.ai_log",
        hlocal="the same format written to the stack's access log (hlocal logs access)",
    ),
    Emulation(
        key="stats_tags",
        higress="AI metrics are exported with the labels ai_route, ai_cluster, ai_model, ai_consumer",
        hlocal="stats tag extractors on wasm-go's metric names give /stats/prometheus the same label names",
        differs="only the AI tags are added; Envoy's default tag extractors stay (Higress replaces them with "
                "Istio's list), so other stats may be named differently",
    ),
    Emulation(
        key="tls",
        higress="https listeners with the certificates of the routes' domains, chosen by SNI",
        hlocal="gateway.tls: true adds an https listener (gateway.tls_port) serving a generated self-signed "
               "certificate that covers localhost, 127.0.0.1 and every route domain",
        differs="one certificate for all names instead of one per domain; clients must trust it (or not verify)",
    ),
    Emulation(
        key="properties",
        higress="Higress's Envoy sets route_name, cluster_name and x_request_id for plugins, plus node.metadata.*, "
                "the *_metadata properties and plugin_vm_memory",
        hlocal="the bridge filters copy xds.route_name / xds.cluster_name to route_name / cluster_name and "
               "request.id to x_request_id (what wasm-go reads for rules, RouteCluster and its log lines)",
        differs="node.metadata.*, the *_metadata properties and plugin_vm_memory are not set: a plugin reading "
                "them sees them missing (wasm-go falls back to defaults)",
    ),
]
