"""Which match_list rule a request falls under, as mcp-session decides it.

A port of alibaba/higress plugins/golang-filter/mcp-session/common/match.go (IsMatch,
matchDomain, matchPattern): the first rule whose domain and path both match; the domain is
the request's :authority as sent (port included), `*` in a pattern matches anything; an
empty pattern matches everything; regex rules search (Go's regexp.MatchString is unanchored).
"""

from __future__ import annotations

import re

from ..config.mcp_session import McpMatchRule


def match_domain(authority: str, pattern: str) -> bool:
    if pattern in ("", "*"):
        return True
    regex = "^" + re.escape(pattern).replace(r"\*", ".*") + "$"
    return re.search(regex, authority) is not None


def match_path(pattern: str, path: str, rule_type: str) -> bool:
    if pattern == "":
        return True
    if rule_type == "exact":
        return path == pattern
    if rule_type == "prefix":
        return path.startswith(pattern)
    if rule_type == "suffix":
        return path.endswith(pattern)
    if rule_type == "contains":
        return pattern in path
    if rule_type == "regex":
        try:
            return re.search(pattern, path) is not None
        except re.error:
            return False
    return False


def find_rule(rules: tuple[McpMatchRule, ...], authority: str, path: str) -> McpMatchRule | None:
    """The first rule matching the request's authority and path (no query), or None."""
    for rule in rules:
        if match_domain(authority, rule.match_rule_domain) and match_path(rule.match_rule_path, path,
                                                                          rule.match_rule_type):
            return rule
    return None
