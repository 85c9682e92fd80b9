"""Stub configuration: validate it on load, then pick the first stub that matches a request."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from .paths import sse_frame

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH_KEYS = ("path", "path_prefix", "path_regex")
_BODY_KEYS = ("body", "json", "events")
# The mock frames every reply itself; a stub-set length or encoding would break keep-alive.
_FRAMING_HEADERS = ("content-length", "transfer-encoding")


class StubConfigError(ValueError):
    """The stub configuration is invalid; the message names the stub index and field."""


@dataclass(frozen=True)
class Match:
    """Conditions a request must meet; every given condition must hold."""

    method: str | None = None
    path: str | None = None
    path_prefix: str | None = None
    path_regex: re.Pattern[str] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()

    def matches(self, request: Mapping[str, Any]) -> bool:
        """Whether an echo document (see echo.describe) meets every condition."""
        path = request["path"]
        if self.method is not None and request["method"].upper() != self.method:
            return False
        if self.path is not None and path != self.path:
            return False
        if self.path_prefix is not None and not path.startswith(self.path_prefix):
            return False
        if self.path_regex is not None and self.path_regex.fullmatch(path) is None:
            return False
        headers, query = request["headers"], request["query"]
        return all(value in headers.get(name, ()) for name, value in self.headers) and all(
            value in query.get(name, ()) for name, value in self.query
        )


@dataclass(frozen=True)
class Response:
    """How a stub answers: a fixed body, the echo document, or a stream of SSE frames."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str | None = None
    echo: bool = False
    events: tuple[bytes, ...] | None = None
    interval_ms: float = 0.0
    delay_ms: float = 0.0


@dataclass(frozen=True)
class Stub:
    """One validated stub and its position in the config (reported in the journal)."""

    index: int
    match: Match
    respond: Response


@dataclass(frozen=True)
class StubSet:
    """An immutable stub list plus the JSON it came from; replaced whole, never edited."""

    stubs: tuple[Stub, ...] = ()
    source: list[Any] = field(default_factory=list)

    def find(self, request: Mapping[str, Any]) -> Stub | None:
        """The first stub whose match accepts the request, or None."""
        for stub in self.stubs:  # a loop, not next() over a generator: most mocks have no stubs
            if stub.match.matches(request):
                return stub
        return None


def load_config(config: Mapping[str, Any] | None) -> StubSet:
    """Validate a whole mock config, `{"stubs": [...]}`; None means no stubs."""
    if config is None:
        return StubSet()
    if not isinstance(config, Mapping):
        raise StubConfigError('config: expected an object like {"stubs": [...]}')
    _check_keys(config, "config", ("stubs",))
    return parse_stubs(config.get("stubs", []))


def parse_stubs(stubs: Any) -> StubSet:
    """Validate a list of stubs; the error names the first bad stub index and field."""
    if not isinstance(stubs, list):
        raise StubConfigError("stubs: expected a list of stubs")
    parsed = tuple(_parse_stub(index, raw) for index, raw in enumerate(stubs))
    # A JSON round trip gives GET /__hlocal/stubs a private copy the caller cannot mutate.
    return StubSet(parsed, json.loads(json.dumps(stubs)))


def _parse_stub(index: int, raw: Any) -> Stub:
    where = f"stubs[{index}]"
    obj = _object(raw, where, ("match", "respond"))
    return Stub(
        index,
        _parse_match(obj.get("match", {}), f"{where}.match"),
        _parse_respond(obj.get("respond", {}), f"{where}.respond"),
    )


def _parse_match(raw: Any, where: str) -> Match:
    obj = _object(raw, where, ("method", *_PATH_KEYS, "headers", "query"))
    given = [key for key in _PATH_KEYS if key in obj]
    if len(given) > 1:
        raise StubConfigError(f"{where}: give only one of {', '.join(_PATH_KEYS)} (got {', '.join(given)})")
    method = _optional_str(obj, "method", where)
    if method is not None and not _TOKEN.fullmatch(method):
        raise StubConfigError(f"{where}.method: expected an HTTP method such as GET, got {method!r}")
    regex = None
    pattern = _optional_str(obj, "path_regex", where)
    if pattern is not None:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise StubConfigError(f"{where}.path_regex: invalid regular expression ({exc})") from None
    headers = _string_map(obj.get("headers", {}), f"{where}.headers")
    return Match(
        method=method.upper() if method is not None else None,
        path=_optional_str(obj, "path", where),
        path_prefix=_optional_str(obj, "path_prefix", where),
        path_regex=regex,
        headers=tuple((name.lower(), value) for name, value in headers),
        query=_string_map(obj.get("query", {}), f"{where}.query"),
    )


def _parse_respond(raw: Any, where: str) -> Response:
    obj = _object(raw, where, ("status", "headers", *_BODY_KEYS, "interval_ms", "delay_ms", "echo"))
    status = obj.get("status", 200)
    if not _is_int(status) or not 100 <= status <= 599:
        raise StubConfigError(f"{where}.status: expected an integer 100-599, got {status!r}")
    echo = obj.get("echo", False)
    if not isinstance(echo, bool):
        raise StubConfigError(f"{where}.echo: expected true or false, got {echo!r}")
    kinds = [key for key in _BODY_KEYS if key in obj] + (["echo"] if echo else [])
    if len(kinds) > 1:
        raise StubConfigError(f"{where}: give only one of body, json, events, echo (got {', '.join(kinds)})")
    if "interval_ms" in obj and "events" not in obj:
        raise StubConfigError(f"{where}.interval_ms: only applies together with events")
    response = Response(
        status=status,
        headers=_response_headers(obj.get("headers", {}), f"{where}.headers"),
        echo=echo,
        interval_ms=_millis(obj, "interval_ms", where),
        delay_ms=_millis(obj, "delay_ms", where),
    )
    if echo:
        return replace(response, content_type="application/json")
    if "body" in obj:
        if not isinstance(obj["body"], str):
            raise StubConfigError(f"{where}.body: expected a string (use json for other values)")
        return replace(response, body=obj["body"].encode("utf-8"), content_type="text/plain; charset=utf-8")
    if "json" in obj:
        return replace(response, body=_dump_json(obj["json"], f"{where}.json"), content_type="application/json")
    if "events" in obj:
        events = obj["events"]
        if not isinstance(events, list):
            raise StubConfigError(f"{where}.events: expected a list of events")
        frames = tuple(_parse_event(event, f"{where}.events[{i}]") for i, event in enumerate(events))
        return replace(response, events=frames, content_type="text/event-stream")
    return response


def _parse_event(raw: Any, where: str) -> bytes:
    if isinstance(raw, str):
        return sse_frame(data=raw)
    obj = _object(raw, where, ("event", "data", "id", "retry"))
    if not obj:
        raise StubConfigError(f"{where}: expected a string or an object with event, data, id or retry")
    event = _optional_str(obj, "event", where)
    event_id = obj.get("id")
    if _is_int(event_id):
        event_id = str(event_id)
    elif event_id is not None and not isinstance(event_id, str):
        raise StubConfigError(f"{where}.id: expected a string or an integer")
    for name, value in (("event", event), ("id", event_id)):
        if value is not None and any(c in value for c in "\r\n\0"):
            raise StubConfigError(f"{where}.{name}: must be a single line")
    retry = obj.get("retry")
    if retry is not None and (not _is_int(retry) or retry < 0):
        raise StubConfigError(f"{where}.retry: expected an integer number of milliseconds >= 0")
    data = obj.get("data")
    if "data" in obj and not isinstance(data, str):
        data = _dump_json(data, f"{where}.data").decode("utf-8")
    return sse_frame(data=data, event=event, id=event_id, retry=retry)


def _response_headers(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        raise StubConfigError(f"{where}: expected an object of header name to value")
    pairs = []
    for name, value in raw.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise StubConfigError(f"{where}: {name!r} is not a valid header name")
        if name.lower() in _FRAMING_HEADERS:
            raise StubConfigError(f"{where}.{name}: the mock sets this header itself; remove it")
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str) or any(c in item for c in "\r\n\0"):
                raise StubConfigError(f"{where}.{name}: expected a single-line string or a list of them")
            pairs.append((name, item))
    return tuple(pairs)


def _string_map(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, Mapping):
        raise StubConfigError(f"{where}: expected an object of name to string value")
    for name, value in raw.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise StubConfigError(f"{where}.{name}: expected a string value, got {value!r}")
    return tuple(raw.items())


def _object(raw: Any, where: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise StubConfigError(f"{where}: expected an object, got {type(raw).__name__}")
    _check_keys(raw, where, allowed)
    return raw


def _check_keys(obj: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    for key in obj:
        if key not in allowed:
            # Unknown keys are usually typos ("paht"); silently ignoring them hides the mistake.
            raise StubConfigError(f"{where}.{key}: unknown field (expected one of {', '.join(allowed)})")


def _optional_str(obj: Mapping[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise StubConfigError(f"{where}.{key}: expected a string, got {value!r}")
    return value


def _millis(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = obj.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise StubConfigError(f"{where}.{key}: expected a number of milliseconds >= 0, got {value!r}")
    return float(value)


def _dump_json(value: Any, where: str) -> bytes:
    try:
        return json.dumps(value, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise StubConfigError(f"{where}: not a JSON value ({exc})") from None


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but `"status": true` is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)
