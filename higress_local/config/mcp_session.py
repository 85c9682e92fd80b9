"""gateway.mcp_server in hlocal.yaml: Higress's `higress-config` ConfigMap `mcpServer:` section.

Same keys and checks as Higress (alibaba/higress pkg/ingress/kube/configmap/mcp_server.go,
`McpServer`, `MatchRule`, `validMcpServer`); what hlocal does not emulate is refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from .schema import Node

RULE_TYPES = ("exact", "prefix", "suffix", "contains", "regex")
UPSTREAM_TYPES = ("rest", "sse", "streamable")
MESSAGE_UPSTREAMS = ("rest", "streamable")  # the wasm-server rules mcp-session serves SSE for
RULE_KEYS = ("match_rule_domain", "match_rule_path", "match_rule_type", "upstream_type", "enable_path_rewrite",
             "path_rewrite_prefix")
NOT_EMULATED = {
    "servers": "Higress's built-in Go MCP servers (mcp-server filter) do not run in hlocal; "
               "serve the MCP server as a wasm plugin on a route",
    "enable_user_level_server": "per-user server configs (mcp-session's /config API) are not emulated; remove the key",
    "rate_limit": "mcp-session's per-user rate limit is not emulated; remove the key "
                  "(a rate-limit plugin on the route is)",
}


@dataclass(frozen=True)
class McpMatchRule:
    """One match_list item: which requests mcp-session handles, and what is behind them."""

    match_rule_domain: str = ""
    match_rule_path: str = ""
    match_rule_type: str = "prefix"
    upstream_type: str = "rest"


@dataclass(frozen=True)
class McpServer:
    """mcp-session as configured: on, the SSE path suffix, the match list."""

    enable: bool = False
    sse_path_suffix: str = "/sse"
    match_list: tuple[McpMatchRule, ...] = ()


def parse_mcp_server(node: Node) -> McpServer | None:
    """gateway.mcp_server, or None when absent or `enable: false` (Higress then adds no filter)."""
    if node.value is None:
        return None
    node.mapping(["enable", "sse_path_suffix", "match_list", "redis", *NOT_EMULATED])
    for key, why in NOT_EMULATED.items():
        if node.child(key).value is not None:
            raise node.child(key).error("is not emulated by hlocal", why)
    _redis(node.child("redis"))
    if not node.child("enable").boolean(False):
        return None
    suffix = node.child("sse_path_suffix").string("/sse")
    if not suffix.startswith("/") or len(suffix) < 2 or "?" in suffix:
        raise node.child("sse_path_suffix").error(f"{suffix!r} is not a path suffix", "use one like /sse")
    rules = tuple(_rule(item) for item in node.child("match_list").list().items())
    if not rules:
        # Higress accepts an empty list and then handles no request at all (common/match.go IsMatch
        # returns a rule with no upstream type): almost certainly not what was meant.
        raise node.child("match_list").error(
            "is empty: mcp-session would handle no request",
            "add a rule for the MCP server's route, e.g. {match_rule_path: /mcp, match_rule_type: prefix}")
    return McpServer(enable=True, sse_path_suffix=suffix, match_list=rules)


def _redis(node: Node) -> None:
    """Accepted as Higress writes it and unused: one gateway process needs no pub/sub between instances."""
    if node.value is not None:
        node.mapping(["address", "username", "password", "db"])


def _rule(node: Node) -> McpMatchRule:
    node.mapping(RULE_KEYS, optional=False)
    if node.child("match_rule_type").value is None:
        raise node.child("match_rule_type").error(
            "is required", f"one of {', '.join(RULE_TYPES)} (Higress refuses a rule without it)")
    upstream = node.child("upstream_type").choice(UPSTREAM_TYPES, "rest")
    if upstream == "sse":
        raise node.child("upstream_type").error(
            "sse (an SSE MCP server behind the gateway, its endpoint rewritten) is not emulated by hlocal",
            "hlocal emulates mcp-session in front of wasm MCP servers: use upstream_type rest or streamable")
    if node.child("enable_path_rewrite").boolean(False):
        raise node.child("enable_path_rewrite").error("is only for upstream_type sse (as on Higress)",
                                                      "remove it")
    if node.child("path_rewrite_prefix").value is not None:
        raise node.child("path_rewrite_prefix").error("is only for upstream_type sse", "remove it")
    rule = McpMatchRule(
        match_rule_domain=node.child("match_rule_domain").string(""),
        match_rule_path=node.child("match_rule_path").string(""),
        match_rule_type=node.child("match_rule_type").choice(RULE_TYPES),
        upstream_type=upstream,
    )
    if rule.match_rule_type == "regex":
        _check_regex(node.child("match_rule_path"), rule.match_rule_path)
    return rule


def _check_regex(node: Node, pattern: str) -> None:
    import re

    try:
        re.compile(pattern)
    except re.error as exc:
        raise node.error(f"{pattern!r} is not a regular expression ({exc})", "fix the pattern") from None
