"""A real MCP server (the reference SDK's, Streamable HTTP, JSON replies, no session) for client tests.

Run as `python mcp_reference_server.py PORT`; it serves /mcp on 127.0.0.1 until killed.
"""

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("reference")


@server.tool(description="Weather of a city")
def weather(city: str, days: int = 1) -> str:
    return f"{city}: sunny for {days} day(s)"


@server.tool(description="Always fails")
def broken(reason: str) -> str:
    raise ValueError(f"broken on purpose: {reason}")


if __name__ == "__main__":
    import uvicorn

    app = server.streamable_http_app(json_response=True, stateless_http=True)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
