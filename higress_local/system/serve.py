"""Serving until told to stop: the loop of hlocal's helper processes (the Redis relay, the MCP session)."""

from __future__ import annotations

import signal
import sys
from socketserver import BaseServer


def serve_until_stopped(server: BaseServer, banner: str, *also_close: BaseServer) -> None:
    """Print `banner`, serve until SIGTERM or Ctrl-C, then close `server` and `also_close`."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(banner, flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for each in (server, *also_close):
            each.server_close()
