"""The control port: health, the request journal and the live stub set, under /__hlocal/.

Only loopback Host headers are answered, and when the mock has a token (`--token-file`), every
endpoint but health needs it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any, Callable
from urllib.parse import parse_qs

from . import wire
from .base import Reply, Request
from .journal import parse_header_filter
from .paths import PREFIX
from .state import MockState
from .stubs import StubConfigError, parse_stubs

# Control bodies (a stub list) are kept whole, up to this size.
CONTROL_MAX_BODY = 64 * 1024 * 1024
TOKEN_HEADER = "X-Hlocal-Token"

Answer = tuple[int, Any]


# Readiness checks (hlocal's own, a compose healthcheck) poll this without the token; it tells
# nothing a local process could not see anyway (a name and two port numbers).
OPEN_PATHS = frozenset({f"{PREFIX}/health"})
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def host_allowed(host: str | None) -> bool:
    """Whether a Host header names the loopback: 127.0.0.1, localhost or [::1], with any port.

    A page served from elsewhere can point its own DNS name at 127.0.0.1 (DNS rebinding); the
    browser then sends that name as Host, which is how the request is told apart.
    """
    if not host:
        return False
    host = host.strip().lower()
    if host.startswith("["):
        name, sep, rest = host.partition("]")
        name += sep
    else:
        name, _, rest = host.partition(":")
        rest = ":" + rest if rest else ""
    if name not in _LOOPBACK_HOSTS:
        return False
    return rest == "" or (rest.startswith(":") and rest[1:].isdigit() and len(rest) <= 6)


def token_given(request: Request) -> str | None:
    """The token a request carries: `Authorization: Bearer <token>` or `X-Hlocal-Token: <token>`."""
    authorization = request.header("authorization") or ""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.header(TOKEN_HEADER.lower())


async def serve_control(
    state: MockState, request: Request, body: wire.Body, trailers: list[tuple[str, str]], reply: Reply
) -> None:
    """Answer one control request: check Host and token, then route it."""
    path, _, raw_query = request.target.partition("?")
    hosts = request.fields.get("host", [])
    if len(hosts) != 1 or not host_allowed(hosts[0]):
        shown = ", ".join(hosts) or "none"
        await reply.send_json(403, {"error": f"the control API answers only to Host 127.0.0.1, localhost or "
                                             f"[::1] (with any port); this request had Host: {shown}"})
        return
    if state.token is not None and path.rstrip("/") not in OPEN_PATHS:
        given = token_given(request)
        if given is None or not hmac.compare_digest(given.encode("utf-8"), state.token.encode("utf-8")):
            why = "a wrong token" if given is not None else "no token"
            await reply.send_json(
                401,
                {"error": f"the control API needs this stack's token and the request had {why}; send "
                          f"'Authorization: Bearer <token>' or '{TOKEN_HEADER}: <token>' (hlocal reads it "
                          "from the stack's state directory)"},
                [("WWW-Authenticate", 'Bearer realm="hlocal-mock"')],
            )
            return
    routes: dict[str, dict[str, Callable[[MockState, dict[str, list[str]], bytes], Answer]]] = {
        f"{PREFIX}/health": {"GET": _health},
        f"{PREFIX}/journal": {"GET": _journal, "DELETE": _clear},
        f"{PREFIX}/stubs": {"GET": _get_stubs, "PUT": _put_stubs},
    }
    methods = routes.get(path.rstrip("/"))
    if methods is None:
        await reply.send_json(404, {"error": f"no control endpoint {path}; try GET {PREFIX}/health"})
        return
    action = methods.get(request.method)
    if action is None:
        allowed = ", ".join(methods)
        await reply.send_json(405, {"error": f"{path} accepts {allowed}"}, [("Allow", allowed)])
        return
    query = parse_qs(raw_query, keep_blank_values=True)
    # Off the event loop: copying a large journal must not hold up the backend port.
    status, doc = await asyncio.to_thread(action, state, query, body.data)
    await reply.send_json(status, doc)


def _health(state: MockState, query: dict[str, list[str]], body: bytes) -> Answer:
    return 200, {"ok": True, "name": state.name, "port": state.port, "control_port": state.control_port}


def _journal(state: MockState, query: dict[str, list[str]], body: bytes) -> Answer:
    try:
        since = _int_param(query, "since")
        limit = _int_param(query, "limit")
        headers = [parse_header_filter(text) for text in query.get("header", [])]
        # header_suffix=name:end: only entries with a value of that header ending so (the inspector's
        # collector, while it captures a sample of x-request-ids, asks for those alone).
        suffixes = [parse_header_filter(text) for text in query.get("header_suffix", [])]
    except ValueError as exc:
        return 400, {"error": str(exc)}
    journal = state.journal
    # last_seq is read first: an entry recorded in between is then seen again next poll,
    # never skipped by a caller that uses last_seq as its next `since`.
    last_seq = journal.last_seq
    return 200, {"entries": journal.entries(since, headers, limit, suffixes), "last_seq": last_seq}


def _clear(state: MockState, query: dict[str, list[str]], body: bytes) -> Answer:
    return 200, {"ok": True, "cleared": state.journal.clear()}


def _get_stubs(state: MockState, query: dict[str, list[str]], body: bytes) -> Answer:
    return 200, {"stubs": state.stubs.source}


def _put_stubs(state: MockState, query: dict[str, list[str]], body: bytes) -> Answer:
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
    state.stubs = stubs  # one assignment: requests see the old set or the new, whole
    return 200, {"ok": True, "count": len(stubs.stubs)}


def _int_param(query: dict[str, list[str]], name: str) -> int | None:
    values = query.get(name)
    if not values:
        return None
    text = values[-1]
    if not text.isdigit():
        raise ValueError(f"{name} must be a whole number >= 0, got {text!r}")
    return int(text)
