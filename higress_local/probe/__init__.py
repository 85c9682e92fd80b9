"""Talking to a running stack: requests through the gateway, what the backend saw, MCP calls."""
