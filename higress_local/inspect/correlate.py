"""Which journal entry is the request a client sent: by hlocal's request id, else by time, seq and path.

A request reaches the backend, or a service mock when its route has `service:`. A plugin may drop
hlocal's request-id header (e.g. by replacing every header); then the entry is found among those
recorded while the request was in flight, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..mock.client import MockClient, MockClientError
from ..state import StackState

REQUEST_ID_HEADER = "x-hlocal-request-id"
BACKEND = "backend"


@dataclass
class Received:
    """One journal entry and how it was tied to the request."""

    where: str  # "backend", a service name, or `name[i]` for replica i of a mock service
    entry: dict[str, Any]
    matched_by: str  # a sentence: "request id", or how the time window decided


def mocks(state: StackState) -> dict[str, MockClient]:
    """The backend's and each mock service's (or replica's: `name[i]`) control client, backend first."""
    out = {BACKEND: MockClient(state.control_url, token=state.control_token)}
    for plan in state.services.values():
        out.update({label: MockClient(url, token=state.control_token) for label, url in plan.journals().items()})
    return out


def marks(clients: dict[str, MockClient]) -> dict[str, int]:
    """The newest seq of every journal now: what a request sent next can only come after."""
    out = {}
    for name, client in clients.items():
        try:
            out[name] = client.last_seq()
        except MockClientError:
            continue
    return out


def find_received(clients: dict[str, MockClient], since: dict[str, int], request_id: str, method: str,
                  path: str) -> Received | None:
    """The entry of the request tagged `request_id` in any journal; else the time-window guess."""
    window: list[tuple[str, dict[str, Any]]] = []
    for name, client in clients.items():
        if name not in since:
            continue
        try:
            entries = client.journal(since=since[name])
        except MockClientError:
            continue
        for entry in entries:
            if request_id in (entry.get("headers") or {}).get(REQUEST_ID_HEADER, []):
                return Received(name, entry, "request id")
            window.append((name, entry))
    return guess(window, method, path)


def guess(window: list[tuple[str, dict[str, Any]]], method: str, path: str) -> Received | None:
    """Among entries recorded while the request was in flight and carrying no other request's id,
    the one with the same method and path (or the only one); None when nothing arrived."""
    untagged = [(name, e) for name, e in window if not (e.get("headers") or {}).get(REQUEST_ID_HEADER)]
    if not untagged:
        return None
    bare = path.split("?", 1)[0]
    same = [(name, e) for name, e in untagged if e.get("method") == method and e.get("path") == bare]
    pool = same or untagged
    name, entry = pool[0]
    what = "same method and path" if same else "a different path (did the plugin rewrite it?)"
    how = (f"the request-id header was missing (a plugin dropped it), so it was matched by time: "
           f"seq {entry.get('seq')} of {name}'s journal, recorded while the request was in flight, {what}")
    if len(pool) > 1:
        how += f"; {len(pool)} such entries arrived meanwhile, this is the first"
    return Received(name, entry, how)
