"""The `mcp:` probes of hlocal.yaml: `mcp: {tool, arguments, path, timeout_s}` with
`expect: {text_contains, is_error, upstream}`. Parsed here (config/project.py imports this module); probe/send.py runs them.
"""

from __future__ import annotations

from .models import McpCall
from .schema import Node
from .validate import check_path

DEFAULT_PATH = "/mcp"  # where Higress's MCP servers are conventionally routed
DEFAULT_TIMEOUT = 30.0
MCP_KEYS = ("tool", "arguments", "path", "timeout_s")
# The expect keys an MCP probe can check, and those only it can: the others are about an HTTP response.
MCP_EXPECT_KEYS = ("text_contains", "is_error", "upstream")
MCP_ONLY_EXPECT_KEYS = ("text_contains", "is_error")
HTTP_ONLY_EXPECT_KEYS = ("status", "headers", "headers_absent", "body_contains", "json", "services")


def parse_mcp_call(node: Node) -> McpCall:
    """probes[i].mcp: which tool, with which arguments, on which path."""
    node.mapping(MCP_KEYS, optional=False)
    arguments = node.child("arguments").mapping().value
    path = node.child("path").string(DEFAULT_PATH)
    check_path(path, f"{node.source}: {node.child('path').path}")
    timeout = node.child("timeout_s")
    if timeout.value is not None and (isinstance(timeout.value, bool) or not isinstance(timeout.value, (int, float))
                                      or timeout.value <= 0):
        raise timeout.error(f"expected a number of seconds above 0, got {timeout.value!r}")
    return McpCall(tool=node.child("tool").string(), arguments=dict(arguments), path=path,
                   timeout_s=float(timeout.value or DEFAULT_TIMEOUT))


def check_expect_keys(probe: Node, is_mcp: bool) -> None:
    """An MCP probe checks the tool result (and the upstream); an HTTP probe cannot check a tool result."""
    if is_mcp and probe.child("request").value is not None:
        raise probe.error("give request or mcp, not both", "an mcp probe calls a tool; a request probe sends HTTP")
    expect = probe.child("expect")
    if not isinstance(expect.value, dict):
        return  # the type error comes from the mapping check that follows
    for key in expect.value:
        if is_mcp and key in HTTP_ONLY_EXPECT_KEYS:
            raise expect.child(key).error("is about an HTTP response; an mcp probe checks the tool result",
                                          f"an mcp probe's expect takes: {', '.join(MCP_EXPECT_KEYS)}")
        if not is_mcp and key in MCP_ONLY_EXPECT_KEYS:
            raise expect.child(key).error("checks an MCP tool result; this probe sends an HTTP request",
                                          "give the probe `mcp: {tool: NAME, arguments: {...}}` instead of `request`")


def parse_mcp_expect(node: Node) -> tuple[str | None, bool | None]:
    """expect.text_contains and expect.is_error."""
    is_error = node.child("is_error")
    return (node.child("text_contains").optional_string(),
            None if is_error.value is None else is_error.boolean(False))
