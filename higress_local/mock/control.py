"""The control port: health, the request journal and the live stub set, under /__hlocal/."""

from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import parse_qs

from .base import BaseHandler
from .journal import parse_header_filter
from .stubs import StubConfigError, parse_stubs

PREFIX = "/__hlocal"

Reply = tuple[int, Any]


class ControlHandler(BaseHandler):
    """Serves the control port; kept off the backend port so plugins never see it."""

    def serve(self, body: bytes, trailers: list[tuple[str, str]]) -> None:
        path, _, raw_query = self.path.partition("?")
        routes: dict[str, dict[str, Callable[[dict[str, list[str]], bytes], Reply]]] = {
            f"{PREFIX}/health": {"GET": self._health},
            f"{PREFIX}/journal": {"GET": self._journal, "DELETE": self._clear},
            f"{PREFIX}/stubs": {"GET": self._get_stubs, "PUT": self._put_stubs},
        }
        methods = routes.get(path.rstrip("/"))
        if methods is None:
            self.send_json(404, {"error": f"no control endpoint {path}; try GET {PREFIX}/health"})
            return
        action = methods.get(self.command)
        if action is None:
            allowed = ", ".join(methods)
            self.send_json(405, {"error": f"{path} accepts {allowed}"}, [("Allow", allowed)])
            return
        status, doc = action(parse_qs(raw_query, keep_blank_values=True), body)
        self.send_json(status, doc)

    def _health(self, query: dict[str, list[str]], body: bytes) -> Reply:
        state = self.state
        return 200, {"ok": True, "name": state.name, "port": state.port, "control_port": state.control_port}

    def _journal(self, query: dict[str, list[str]], body: bytes) -> Reply:
        try:
            since = _int_param(query, "since")
            limit = _int_param(query, "limit")
            headers = [parse_header_filter(text) for text in query.get("header", [])]
        except ValueError as exc:
            return 400, {"error": str(exc)}
        journal = self.state.journal
        # last_seq is read first: an entry recorded in between is then seen again next poll,
        # never skipped by a caller that uses last_seq as its next `since`.
        last_seq = journal.last_seq
        return 200, {"entries": journal.entries(since, headers, limit), "last_seq": last_seq}

    def _clear(self, query: dict[str, list[str]], body: bytes) -> Reply:
        return 200, {"ok": True, "cleared": self.state.journal.clear()}

    def _get_stubs(self, query: dict[str, list[str]], body: bytes) -> Reply:
        return 200, {"stubs": self.state.stubs.source}

    def _put_stubs(self, query: dict[str, list[str]], body: bytes) -> Reply:
        try:
            doc = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            return 400, {"error": f"body is not JSON ({exc})"}
        if not isinstance(doc, dict) or set(doc) != {"stubs"}:
            return 400, {"error": 'body must be {"stubs": [...]}'}
        try:
            stubs = parse_stubs(doc["stubs"])
        except StubConfigError as exc:
            return 400, {"error": str(exc)}
        self.state.stubs = stubs  # one assignment: requests see the old set or the new, whole
        return 200, {"ok": True, "count": len(stubs.stubs)}


def _int_param(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values:
        return None
    text = values[-1]
    if not text.isdigit():
        raise ValueError(f"{name} must be a whole number >= 0, got {text!r}")
    return int(text)
