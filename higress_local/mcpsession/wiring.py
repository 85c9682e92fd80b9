"""How a stack runs the session process: its command line, its component name, how to tell it is up."""

from __future__ import annotations

import dataclasses
import json
import sys

from ..system.readiness import admin_get
from ..system.wait import NotYet
from ..config.mcp_session import McpServer

COMPONENT = "mcp-session"
HEALTH_PATH = "/__hlocal/health"  # on the control port (server.py serves it)


def session_argv(port: int, control_port: int, gateway_port: int, settings: McpServer) -> list[str]:
    """The process's command line (standard library only: the interpreter running hlocal will do)."""
    return [sys.executable, "-m", "higress_local.mcpsession", "--port", str(port), "--control-port",
            str(control_port), "--gateway", f"127.0.0.1:{gateway_port}",
            "--settings", json.dumps(dataclasses.asdict(settings), separators=(",", ":"))]


def session_ready_check(control_port: int) -> None:
    """Raise NotYet until the session process answers its health check."""
    url = f"http://127.0.0.1:{control_port}{HEALTH_PATH}"
    try:
        status = admin_get(url).status_code
    except OSError as exc:
        raise NotYet(f"mcp-session not answering on {url}") from exc
    if status != 200:
        raise NotYet(f"mcp-session health answered {status}")
