"""``python -m higress_local.mcpsession --port P --control-port C --gateway HOST:PORT --settings JSON``"""

from __future__ import annotations

import argparse
import json
import sys
import threading

from .server import PING_INTERVAL, ControlServer, Options, SessionServer, Sessions
from ..config.mcp_session import McpMatchRule, McpServer
from ..system.serve import serve_until_stopped


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _settings(text: str) -> McpServer:
    try:
        raw = json.loads(text)
        rules = tuple(McpMatchRule(**rule) for rule in raw.pop("match_list"))
        return McpServer(**raw, match_list=rules)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise argparse.ArgumentTypeError(f"bad --settings: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m higress_local.mcpsession",
                                     description="hlocal's mcp-session: MCP's SSE transport as Higress serves it")
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1 the gateway routes to")
    parser.add_argument("--control-port", type=int, required=True, help="health and open sessions, for hlocal")
    parser.add_argument("--gateway", type=_address, required=True, help="HOST:PORT of the gateway's listener")
    parser.add_argument("--settings", type=_settings, required=True, help="gateway.mcp_server as JSON")
    parser.add_argument("--ping-interval", type=float, default=PING_INTERVAL)
    args = parser.parse_args(argv)
    sessions = Sessions()
    options = Options(settings=args.settings, gateway=args.gateway, ping_interval=args.ping_interval)
    try:
        server = SessionServer(args.port, options, sessions)
        control = ControlServer(args.control_port, sessions)
    except OSError as exc:
        print(f"mcp-session: cannot listen on 127.0.0.1: {exc.strerror}", file=sys.stderr)
        return 3
    threading.Thread(target=control.serve_forever, daemon=True).start()
    serve_until_stopped(server, f"mcp-session listening on 127.0.0.1:{args.port} (sse suffix "
                        f"{options.settings.sse_path_suffix}, {len(options.settings.match_list)} rule(s)); "
                        f"gateway {args.gateway[0]}:{args.gateway[1]}", control)
    return 0


if __name__ == "__main__":
    sys.exit(main())
