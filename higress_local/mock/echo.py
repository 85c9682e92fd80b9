"""The echo document: a JSON-ready picture of one request, used by echo replies and the journal."""

from __future__ import annotations

import base64
import json
from typing import Any, Iterable
from urllib.parse import parse_qsl, urlsplit

from .wire import Body


def describe(
    method: str,
    target: str,
    http_version: str,
    fields: dict[str, list[str]],
    body: Body,
    trailer_items: Iterable[tuple[str, str]] = (),
) -> dict[str, Any]:
    """Describe a request: method, path, query, headers, body (text or base64), json, version.

    `fields` are the headers grouped by lowercase name (see group_fields). A body longer than the
    mock keeps is described by its first bytes plus `body_truncated`, `body_size` and `body_sha256`.
    """
    path, query = split_target(target)
    doc: dict[str, Any] = {"method": method, "path": path, "query": query, "headers": fields}
    data = body.data
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        # A cut may split a multi-byte character; the kept text is still text up to there.
        text = _text_prefix(data) if body.truncated else None
    doc["body"] = text
    if text is None:
        doc["body_base64"] = base64.b64encode(data).decode("ascii")
    doc["json"] = None if body.truncated else parse_json(text)
    doc["body_size"] = body.size
    if body.truncated:
        doc.update(body_truncated=True, body_sha256=body.sha256)
    doc["http_version"] = http_version
    trailers = group_fields(trailer_items) if trailer_items else None
    if trailers:
        doc["trailers"] = trailers
    return doc


def _text_prefix(data: bytes) -> str | None:
    """The UTF-8 text of a cut body, dropping a character split by the cut (at most 3 bytes)."""
    for cut in range(1, 4):
        try:
            return data[:-cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    """Split a request-target into its path (as sent, not percent-decoded) and decoded query."""
    if not target.startswith("/") and "://" in target:
        # Absolute-form, as a client talking to a forward proxy would send it.
        parts = urlsplit(target)
        path, raw_query = parts.path or "/", parts.query
    else:
        path, _, raw_query = target.partition("?")
    query: dict[str, list[str]] = {}
    if "%" in raw_query or "+" in raw_query:
        pairs = parse_qsl(raw_query, keep_blank_values=True)
    else:
        # Nothing to decode: split as parse_qsl would (on "&", empty pieces dropped, a missing
        # "=" meaning an empty value) without its cost, which showed in the mock's profile.
        pairs = [piece.partition("=")[::2] for piece in raw_query.split("&") if piece]
    for name, value in pairs:
        query.setdefault(name, []).append(value)
    return path, query


def group_fields(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Group header fields by lowercase name, keeping every value in arrival order."""
    grouped: dict[str, list[str]] = {}
    for name, value in items:
        grouped.setdefault(name.lower(), []).append(value if value.isascii() else repair_utf8(value))
    return grouped


def parse_json(text: str | None) -> Any:
    """Parse text as strict JSON; None when it is empty or not JSON."""
    if not text or not text.strip():
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError:
        return None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; accepting them would make the echo reply invalid JSON.
    raise ValueError(f"{name} is not JSON")


def repair_utf8(value: str) -> str:
    """Undo the latin-1 decoding of header bytes when they were really UTF-8."""
    if value.isascii():
        return value  # nearly every header: nothing to undo
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
