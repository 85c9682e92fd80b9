"""Higress's mcp-session filter (MCP's SSE transport in front of a wasm MCP server), emulated.

On Higress a Go filter in Envoy (alibaba/higress plugins/golang-filter/mcp-session) answers
`GET <path><sse_path_suffix>` with an event stream and turns the wasm server's reply to a message
POSTed to `<path>?sessionId=...` into an SSE event on that stream (Redis pub/sub between gateway
instances). hlocal runs the same behaviour as one small process beside Envoy (server.py).
"""
