"""Host and foreign functions only Higress's Envoy provides, and how the adapted module gets them."""

from __future__ import annotations

from ...higress.emulation import Emulation

REDIS = Emulation(
    key="redis",
    higress=("proxy_redis_init / proxy_redis_call: Envoy's own Redis client on the cluster wasm-go names "
             "(AUTH with Init's username/password, options db/buffer_flush_timeout/"
             "max_buffer_size_before_flush after '?', Init's timeout as operation timeout); the reply "
             "reaches proxy_on_redis_call_response and is read as buffer type 9"),
    hlocal=("in a copy of the module both imports call functions hlocal adds: each command becomes a "
            "stock proxy_http_call to hlocal's Redis relay on the same cluster (the RESP command is the "
            "body, Init's timeout the call timeout); the relay authenticates and selects the db as Init "
            "said and passes the command to the real redis-server; proxy_on_http_call_response hands "
            "relay replies to the SDK's proxy_on_redis_call_response, and buffer type 9 reads the reply"),
    differs=("one extra loopback hop per command (the relay); buffer_flush_timeout and "
             "max_buffer_size_before_flush are accepted but commands are not batched (none waits up to "
             "buffer_flush_timeout, 3 ms by default, before it leaves); with several "
             "Redis clusters in one plugin every command uses the timeout of the last Init; at most 256 "
             "Redis calls in flight per worker (the next one fails with InternalFailure)"),
)

GET_LOG_LEVEL = Emulation(
    key="get_log_level",
    higress=("foreign function get_log_level answers Envoy's wasm log level (u32 little-endian: "
             "0 trace … 5 critical, 6 off); wasm-go gates its log wrapper on it"),
    hlocal=("proxy_call_foreign_function is wrapped in the copy: get_log_level answers the stack's "
            "gateway.wasm_log_level, written into the module when it is adapted; other names go to Envoy"),
    differs=("a level changed at run time through Envoy's admin /logging is not seen by the plugin "
             "until the next up or reload"),
)

# Users read in alibaba/higress plugins/wasm-go/extensions/ai-security-guard (buffers the streamed
# answer, calls the moderation service, then injects the checked chunks or a deny event from the
# callback) and higress-group/wasm-go pkg/mcp/server/sse_proxy.go, pkg/mcp/utils/json_rpc.go.
INJECT_DATA = Emulation(
    key="inject_encoded_data",
    higress=("proxy_inject_encoded_data_to_filter_chain (and the foreign function "
             "inject_encoded_data_to_filter_chain_on_header) push bytes into the response stream, also "
             "from an asynchronous callback: ai-security-guard resumes a paused streaming response with "
             "checked chunks, wasm-go's MCP framework (pkg/mcp/server sse_proxy.go) writes JSON-RPC "
             "replies into a proxied SSE stream"),
    hlocal=("in a copy of the module the import calls a function hlocal adds: inside the plugin's "
            "response-body callback the injected bytes replace (then extend) the chunk, which goes on; "
            "a chunk the plugin keeps (StopIterationNoBuffer) is emptied and held in Envoy's buffer, and "
            "an injection from a callback appends to that buffer and resumes the response"),
    differs=("injection from a callback reaches the client only while the plugin holds the response: a "
             "second injection before more upstream data arrives gets BadArgument; once the upstream has "
             "ended, injected chunks wait for the plugin's last injection (end_stream) and then go out "
             "together; after an injection with end_stream the response still ends when the upstream "
             "ends (later upstream data is dropped); at most 12 held responses per worker; the foreign "
             "function inject_encoded_data_to_filter_chain_on_header answers NotFound, so wasm-go's MCP "
             "framework falls back to SendHttpResponse (same bytes to the client)"),
)

# Users read in alibaba/higress plugins/wasm-go/extensions/ai-load-balancer: endpoint_metrics,
# least_busy, global_least_request and prefix_cache call GetUpstreamHosts (host address plus JSON
# with health_status and metrics) and SetUpstreamOverrideHost with the address they chose.
UPSTREAM_HOSTS = Emulation(
    key="upstream_hosts",
    higress=("proxy_get_upstream_hosts lists the route cluster's hosts, each with its health status "
             "and endpoint metrics, and proxy_set_upstream_override_host pins the host: "
             "ai-load-balancer picks the least-loaded healthy endpoint (or a prefix-cache / "
             "least-request choice kept in Redis) and pins it"),
    hlocal=("in a copy of the module both imports call functions hlocal adds: the host list is a table "
            "hlocal writes into the module when it adapts it (every service with urls or mock replicas: "
            "each endpoint's address, health_status Healthy and the metrics hlocal.yaml gives it), looked "
            "up by the request's cluster_name; the pinned host goes into the request header "
            "x-hlocal-upstream-host, which the cluster's stock override-host load-balancing policy "
            "(Envoy >= 1.35) reads; the cluster's upstream filter removes it before the endpoint, and "
            "a client's own copy is removed before any filter runs"),
    differs=("hosts and metrics are fixed when the module is adapted (up, or a reload that rebuilds it), "
             "not read live from the endpoints; every endpoint is Healthy (no health checks); only "
             "services with urls or mock replicas list hosts (other clusters answer NotFound, so the "
             "plugin keeps Envoy's own balancing); the cluster speaks HTTP/1.1 to its endpoints; the "
             "table holds at most about 2 KB; the older names proxy_get_upstream_metrics and "
             "proxy_override_upstream_host are refused"),
)

HOST_FUNCTION_EMULATIONS: list[Emulation] = [REDIS, GET_LOG_LEVEL, INJECT_DATA, UPSTREAM_HOSTS]

# Which emulation covers each Higress-only host function.
BY_HOST_FUNCTION = {
    "proxy_redis_init": REDIS,
    "proxy_redis_call": REDIS,
    "proxy_inject_encoded_data_to_filter_chain": INJECT_DATA,
    "proxy_get_upstream_hosts": UPSTREAM_HOSTS,
    "proxy_set_upstream_override_host": UPSTREAM_HOSTS,
    "proxy_get_upstream_metrics": UPSTREAM_HOSTS,
    "proxy_override_upstream_host": UPSTREAM_HOSTS,
}
