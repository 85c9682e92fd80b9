"""The control API's path prefix, shared by the server and its client (which must not import asyncio)."""

PREFIX = "/__hlocal"
