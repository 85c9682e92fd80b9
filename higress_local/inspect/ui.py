"""`hlocal ui`: the inspector as a local web page (standard-library server, one static page).

Bound to 127.0.0.1 only. Every request must carry the stack's token (`?t=...`, kept in
.hlocal/<name>/inspect/ui.token, readable by the user only) and a loopback Host header, so
other local users and web pages (DNS rebinding) cannot read captured requests or replay them.
The list stays live through server-sent events; the page itself needs no build step.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from ..system.ownfiles import read_private, write_private
from .store import Store
from .view import list_row, record_json

PAGE = Path(__file__).with_name("page.html")
LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
EVENT_POLL_S = 0.2


def ui_token(state_dir: Path) -> str:
    """The stack's page token, made once and kept (a bookmarked URL keeps working)."""
    path = Path(state_dir) / "inspect" / "ui.token"
    try:
        token = (read_private(path) or b"").decode().strip()
        if token:
            return token
    except (OSError, ValueError, UnicodeDecodeError):
        pass
    token = secrets.token_urlsafe(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, token.encode())
    return token


class InspectorServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, store: Store, token: str, replay: Callable[[int], dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.store, self.token, self.replay = store, token, replay
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/?t={self.token}"

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    server: InspectorServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return  # the page polls; a line per request would drown the terminal

    def _allowed(self) -> bool:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        token = (parse_qs(urlsplit(self.path).query).get("t") or [""])[0]
        if host not in LOOPBACK:
            self._send(403, {"error": "the inspector answers only on 127.0.0.1 / localhost"})
            return False
        if not hmac.compare_digest(token.encode(), self.server.token.encode()):
            self._send(401, {"error": "missing or wrong token: open the URL `hlocal ui` printed"})
            return False
        return True

    def _send(self, status: int, doc: Any, content_type: str = "application/json") -> None:
        data = doc if isinstance(doc, bytes) else json.dumps(doc, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._allowed():
            return
        route = urlsplit(self.path).path.rstrip("/") or "/"
        query = parse_qs(urlsplit(self.path).query)
        if route == "/":
            self._send(200, PAGE.read_bytes(), "text/html; charset=utf-8")
        elif route == "/api/requests":
            limit = int((query.get("n") or ["200"])[0])
            self._send(200, {"requests": [list_row(r) for r in self.server.store.recent(limit=limit)],
                             "capture": self.server.store.capture_stats()})
        elif route.startswith("/api/requests/") and route.rsplit("/", 1)[-1].isdigit():
            record = self.server.store.get(int(route.rsplit("/", 1)[-1]))
            self._send(200, record_json(record)) if record else self._send(404, {"error": "no such request"})
        elif route == "/api/events":
            # A reconnecting EventSource says where it stopped in Last-Event-ID.
            resume = self.headers.get("Last-Event-ID") or (query.get("after") or ["0"])[0]
            self._events(int(resume) if resume.isdigit() else 0)
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        parts = urlsplit(self.path).path.strip("/").split("/")
        if len(parts) == 4 and parts[:2] == ["api", "requests"] and parts[2].isdigit() and parts[3] == "replay":
            try:
                self._send(200, self.server.replay(int(parts[2])))
            except Exception as exc:  # the page shows why; the server keeps serving
                message = getattr(exc, "message", None) or str(exc)
                self._send(400, {"error": message, "hint": getattr(exc, "hint", "")})
            return
        self._send(404, {"error": "not found"})

    def _events(self, after: int) -> None:
        """Server-sent events: one `request` event per newly captured request, until the page goes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.close_connection = True
        last = after or max(self.server.store.ids(), default=0)
        try:
            self.wfile.write(b": hlocal inspector\n\n")
            self.wfile.flush()
            beat = time.monotonic()
            while not self.server.stopping.is_set():
                fresh = [r for r in self.server.store.recent(after=last)]
                for record in reversed(fresh):
                    row = json.dumps(list_row(record), ensure_ascii=False)
                    self.wfile.write(f"event: request\nid: {record['id']}\ndata: {row}\n\n".encode())
                    last = max(last, record["id"])
                if fresh or time.monotonic() - beat > 15:
                    if not fresh:
                        self.wfile.write(b": keep-alive\n\n")
                    beat = time.monotonic()
                    self.wfile.flush()
                self.server.stopping.wait(EVENT_POLL_S)
        except (BrokenPipeError, ConnectionResetError):
            return
