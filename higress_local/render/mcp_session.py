"""Pure rendering of the mcp-session emulation (gateway.mcp_server): its routes and its cluster.

Two routes go ahead of every virtual host's own, both to hlocal's session process
(higress_local/mcpsession/server.py), which applies Higress's match_list itself:
- a path ending with sse_path_suffix (the SSE stream, or a 405 for other methods);
- any request with a `sessionId` query parameter (a message POSTed to a session's endpoint).
Requests the process sends back through the gateway carry FORWARDED_HEADER and take the user's
routes. The plugins are switched off on these two routes (Envoy's route-level FilterConfig
`disabled`, envoyproxy/envoy#27210): on Higress mcp-session runs before every wasm plugin.
"""

from __future__ import annotations

import re
from typing import Any

from ..mcpsession.server import FORWARDED_HEADER
from ..config.mcp_session import McpServer

MCP_SESSION_CLUSTER = "hlocal|mcp-session"
SSE_ROUTE, MESSAGE_ROUTE = "hlocal.mcp-session.sse", "hlocal.mcp-session.message"
FILTER_CONFIG_TYPE = "type.googleapis.com/envoy.config.route.v3.FilterConfig"


def render_session_routes(settings: McpServer, plugin_filters: list[str]) -> list[dict[str, Any]]:
    """The two routes to the session process; `plugin_filters` are switched off on them."""
    not_forwarded = {"name": FORWARDED_HEADER, "present_match": True, "invert_match": True}
    # No route timeout: the SSE stream stays open (Higress's 5 s pings keep it from going idle), and a
    # message's own route (the second pass) keeps its timeout.
    action = {"cluster": MCP_SESSION_CLUSTER, "timeout": "0s"}
    disabled = {name: {"@type": FILTER_CONFIG_TYPE, "disabled": True} for name in plugin_filters}
    sse = {"name": SSE_ROUTE,
           "match": {"safe_regex": {"regex": ".*" + re.escape(settings.sse_path_suffix)}, "headers": [not_forwarded]},
           "route": dict(action)}
    message = {"name": MESSAGE_ROUTE,
               "match": {"prefix": "/", "query_parameters": [{"name": "sessionId", "present_match": True}],
                         "headers": [not_forwarded]},
               "route": dict(action)}
    for route in (sse, message):
        if disabled:
            route["typed_per_filter_config"] = dict(disabled)
    return [sse, message]


def session_virtual_host_options() -> dict[str, Any]:
    """The marker never reaches an upstream (the router removes it; plugins on the second pass see it)."""
    return {"request_headers_to_remove": [FORWARDED_HEADER]}
