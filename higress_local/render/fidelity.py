"""Behaviour of Higress's Envoy that the rendered stock-Envoy configuration reproduces.

The Higress facts the renderer needs (access-log format, stats tags, listener defaults) live here
next to the `Emulation` entries that say, for `hlocal check` and the README, how each one is
reproduced on stock Envoy and what still differs.
"""

from __future__ import annotations

from typing import Any

from ..higress.emulation import Emulation

# Higress's access-log line, byte for byte: the mesh config `accessLogFormat` of alibaba/higress
# helm/core/templates/configmap.yaml (read at commit 9437a213; the same in v2.1.11, v2.2.1 and v2.2.4),
# `accessLogEncoding: TEXT`. `ai_log` is the filter state the AI plugins write (wasm.ai_log).
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
    '"x_forwarded_for":"%REQ(X-FORWARDED-FOR)%",'
    '"response_code_details":"%RESPONSE_CODE_DETAILS%"}'
)

FORMATTER_TYPES = {  # Istio's extra formatters, added when a format uses their command
    "%REQ_WITHOUT_QUERY": ("envoy.formatter.req_without_query",
                           "type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"),
    "%METADATA": ("envoy.formatter.metadata", "type.googleapis.com/envoy.extensions.formatter.metadata.v3.Metadata"),
}


def access_log_text(log_format: str) -> str:
    """The inline format Istio renders from a TEXT accessLogFormat: a newline added if missing
    (higress-group/istio pilot/pkg/model/telemetry_logging.go fileAccessLogFormat)."""
    return log_format if log_format.endswith("\n") else log_format + "\n"


def access_log_formatters(log_format: str) -> list[dict[str, Any]]:
    """The formatter extensions Istio adds for a text format (same file, accessLogTextFormatters)."""
    return [{"name": name, "typed_config": {"@type": type_url}}
            for command, (name, type_url) in FORMATTER_TYPES.items() if command in log_format]


# Higress's bootstrap stats tags, in its order: higress-group/istio
# tools/packaging/common/higress_envoy_bootstrap.json (read at commit 70196f6;
# `use_all_default_tags: false`): Higress's Wasm and AI tags, then Istio's. Istio renders its
# `extraStatTags` between the two groups, taken only from the proxy config and a pod annotation
# (higress-group/istio pkg/bootstrap/config.go getStatsOptions); Higress sets none. The same
# list shows in higress-group/higress issue 1919 (2025-04, a 2.1 gateway). The lite bootstrap
# (LITE_METRICS=on, higress_envoy_bootstrap_lite.json) has no tags; hlocal renders the full one.
# Each regex is matched against the whole stat name; group 1 is cut from it, group 2 is the value.
STATS_TAGS: tuple[dict[str, str], ...] = (
    {"tag_name": "wasm_runtime", "regex": r"^wasm\.envoy\.wasm\.(.*?\.)plugin"},
    {"tag_name": "thread_name", "regex": r"^wasm\..*?\.plugin\..*?\..*?\.(\w+\.)"},
    {"tag_name": "plugin_name", "regex": r"^wasm\..*?plugin\.(.*?\..*?\.)"},
    {"tag_name": "ai_route", "regex": r"^wasmcustom\.route\.((.*?)\.)upstream"},
    {"tag_name": "ai_cluster", "regex": r"^wasmcustom\..*?\.upstream\.((.*?)\.)model"},
    {"tag_name": "ai_model", "regex": r"^wasmcustom\..*?\.model\.((.*?)\.)consumer"},
    {"tag_name": "ai_consumer", "regex": r"^wasmcustom\..*?\.consumer\.((.*?)\.)metric"},
    {"tag_name": "response_code_class", "regex": r"_rq(_(\dxx))$"},
    {"tag_name": "listener_address",
     "regex": r"^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)"},
    {"tag_name": "http_conn_manager_prefix",
     "regex": r"^http\.(((outbound_([0-9]{1,3}\.{0,1}){4}_\d{0,5})|([^\.]+))\.)"},
    {"tag_name": "cluster_name",
     "regex": r"^cluster\.((.*?)\.)(http1\.|http2\.|health_check\.|zone\.|external\.|circuit_breakers\.|[^\.]+$)"},
)


def higress_stats_config() -> dict[str, Any]:
    """The bootstrap's stats_config tags as Higress's. Its stats_matcher is left out: it drops the RDS
    stats (^http.*\\.rds\\.) that hlocal reload reads to see a routes file go live."""
    return {"use_all_default_tags": False, "stats_tags": [dict(tag) for tag in STATS_TAGS]}


# Istio's gateway listeners trust no X-Forwarded-For hop unless gatewayTopology.numTrustedProxies
# is set; Higress installs none (alibaba/higress helm/core/values.yaml meshConfig).
XFF_NUM_TRUSTED_HOPS = 0

# What ai-proxy asks through `set_decoder_buffer_limit` (alibaba/higress
# plugins/wasm-go/extensions/ai-proxy: defaultMaxBodyBytes, 100 MiB), the largest the official
# plugins ask for. Stock Envoy cannot raise a stream's limit from Wasm, so its listeners start here
# and the adapted modules enforce the request's own limit (see the "decoder_buffer_limit" entry).
STOCK_DECODER_BUFFER_LIMIT = 100 * 1024 * 1024
# Higress's upstream.connectionBufferLimits (pkg/ingress/kube/configmap/global.go, v2.2.4): every
# cluster's per_connection_buffer_limit_bytes.
UPSTREAM_BUFFER_LIMIT = 10485760


def listener_buffer_limit(connection_buffer_limits: int, stock_envoy: bool) -> int:
    """The listener's per_connection_buffer_limit_bytes: Higress's value as configured; on stock
    Envoy at least STOCK_DECODER_BUFFER_LIMIT, the adapted modules enforcing the configured one."""
    return max(connection_buffer_limits, STOCK_DECODER_BUFFER_LIMIT) if stock_envoy else connection_buffer_limits


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
        higress="a stream may buffer the listener's connection buffer limit (downstream.connectionBufferLimits, "
                "32 KiB): a plugin that buffers more of a request body gets Envoy's 413 (Payload Too Large), of a "
                "response body a 500 (or a reset once its headers went out), unless the stream's limit was raised "
                "with property set_decoder_buffer_limit / set_encoder_buffer_limit (SetRequestBodyBufferLimit / "
                "SetResponseBodyBufferLimit; ai-proxy asks for 100 MiB); clusters buffer 10 MiB",
        hlocal="the listener buffers up to 100 MiB (stock Envoy cannot raise a limit from Wasm) and each adapted "
               "Go module enforces the stream's limit: when its body callback buffers more than the last "
               "set_decoder_buffer_limit / set_encoder_buffer_limit any plugin of the chain set, else "
               "gateway.downstream.connection_buffer_limits (32768 by default), it answers what Envoy answers "
               "(413; 500 or a reset); clusters buffer 10 MiB as on Higress",
        differs="only bodies a plugin's body callbacks buffer are limited, so these pass here up to 100 MiB where "
                "Higress fails them above the limit: a plugin pausing with StopAllIterationAndBuffer at the "
                "headers, a module that is not a Go build or lacks a host function the check needs, and responses "
                "of a module whose response callback the inject-data emulation takes (hlocal check says \"NOT "
                "enforced\"); a response's limit is set_encoder_buffer_limit, else set_decoder_buffer_limit (Envoy "
                "keeps one, the last set); a body a plugin shrinks while it buffers is judged by the size Envoy "
                "reported",
    ),
    Emulation(
        key="client_address",
        higress="the gateway uses the peer address as the client address and trusts no X-Forwarded-For hop "
                "(use_remote_address, xff_num_trusted_hops 0)",
        hlocal="the same settings on hlocal's listener: a client's X-Forwarded-For does not change source.address",
    ),
    Emulation(
        key="access_log",
        higress="one line per request in the mesh config's accessLogFormat (TEXT; Higress's default is a JSON "
                "object with ai_log = filter state wasm.ai_log), to /dev/stdout",
        hlocal="the same format, byte for byte, rendered as Istio renders it (a newline added, the "
               "req_without_query/metadata formatters when used); gateway.access_log_format replaces it as "
               "accessLogFormat does, checked by Envoy before up; written to the stack's access log (hlocal logs "
               "access)",
        differs="hlocal's Envoy (stock 1.40 unless gateway.envoy says otherwise) checks and runs the format, so a "
                "command Higress's 1.36 fork lacks passes here; 2.0.x releases may ship an older default without "
                "ai_log and response_code_details (not verified: hlocal renders the 2.1.11-2.2.4 one)",
    ),
    Emulation(
        key="stats_tags",
        higress="the bootstrap's stats tags replace Envoy's defaults: wasm_runtime, thread_name, plugin_name, "
                "ai_route, ai_cluster, ai_model, ai_consumer, then Istio's response_code_class, listener_address, "
                "http_conn_manager_prefix, cluster_name",
        hlocal="the same tags with the same regexes in the same order, and use_all_default_tags: false",
        differs="stock Envoy has no per-plugin Wasm stats (wasm.<runtime>.plugin.<name>.*), so wasm_runtime, "
                "thread_name and plugin_name never appear; Higress's stats_matcher (dropping vhost.* and RDS "
                "stats) is not applied, so /stats/prometheus shows more series; the lite bootstrap "
                "(LITE_METRICS=on, no tags) is not modelled",
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
    Emulation(
        key="mcp_sse",
        higress="higress-config mcpServer (enable, sse_path_suffix, match_list, redis) adds the mcp-session Go "
                "filter before every plugin: GET <path><suffix> on a rest/streamable rule opens an SSE stream "
                "whose endpoint event names <path>?sessionId=<uuid>; a message POSTed there reaches the wasm "
                "MCP server, whose answer goes back to the POST and is published as an event: message on Redis "
                "channel mcp-server-sse:<id> to the gateway instance holding the stream; a ping every 5 s",
        hlocal="gateway.mcp_server (same keys) starts hlocal's session process (python -m "
               "higress_local.mcpsession); two routes ahead of yours send it *<suffix> and ?sessionId= requests "
               "with the plugins switched off; it applies match_list as Higress does, holds the streams, sends "
               "each message through the gateway to the route (so the plugin answers it) and writes the answer "
               "on the session's stream; same endpoint event, 405, status codes and ping",
        differs="one process, no Redis (redis is accepted and unused; Higress without it refuses SSE); "
                "the plugins see a forwarded message with header x-hlocal-mcp-session (removed before the "
                "upstream) and it is logged twice in the access log; upstream_type sse (endpoint rewrite), "
                "servers, enable_user_level_server and rate_limit are refused; native runtime only",
    ),
    Emulation(
        key="failure_policy",
        higress="after a plugin's VM traps (a Go fatal error, stack overflow, unreachable) Higress's Envoy "
                "builds a fresh VM for the next request on that worker (higress-group/envoy wasm_filter.h "
                "createFilter: isFailed() -> rebuild, at most once per cooldown); only when that fails does the "
                "WasmPlugin's failStrategy (fail_open) apply",
        hlocal="renders Envoy's failure_policy from plugins[].failure_policy: FAIL_RELOAD by default (stock "
               "Envoy >= 1.33 reloads the VM for the next request, at most once per 0.1 s: hlocal sets Envoy's "
               "reload backoff to 0.1-1 s, its default of 1 s left quick requests on the failed VM), FAIL_CLOSED "
               "(503) or "
               "FAIL_OPEN (Envoy's FAIL_IGNORE: requests skip the plugin) when asked; `hlocal request` notes "
               "the trap and `hlocal status` counts it per plugin",
        differs="Envoy's reload backoff (0.1 s, growing to 1 s) is not Higress's cooldown, so requests in the "
                "first 0.1 s after a trap can still get a 503, and a plugin that traps on every request is "
                "reloaded at another pace; with FAIL_RELOAD, fail_open cannot also apply when a reload fails "
                "(stock Envoy refuses both); FAIL_CLOSED and FAIL_OPEN have no Higress equivalent (it always "
                "tries a fresh VM first)",
    ),
]
