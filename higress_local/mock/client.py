"""MockClient: talk to a running mock's control port with urllib only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from .control import PREFIX
from .stubs import StubConfigError

# The control port is always reached directly: an http_proxy from the environment
# would otherwise swallow requests to 127.0.0.1 or a compose service name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MockClientError(Exception):
    """The control endpoint could not be reached, or answered with an error."""


class MockClient:
    """Reads the journal and changes stubs of a mock through its control URL."""

    def __init__(self, control_url: str, timeout: float = 5.0) -> None:
        self.control_url = control_url.rstrip("/")
        self.timeout = timeout

    def health(self) -> dict[str, Any]:
        """The health document: {"ok": true, "name": ..., "port": ..., "control_port": ...}."""
        return self._call("GET", "/health")

    def journal(
        self,
        since: int | None = None,
        header: str | tuple[str, str] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Journal entries after `since`, optionally only those with a header value."""
        query: dict[str, Any] = {}
        if since is not None:
            query["since"] = since
        if header is not None:
            query["header"] = header if isinstance(header, str) else f"{header[0]}:{header[1]}"
        if limit is not None:
            query["limit"] = limit
        return self._call("GET", "/journal", query)["entries"]

    def last_seq(self) -> int:
        """The seq of the newest journaled request; pass it as `since` to see only later ones."""
        return self._call("GET", "/journal", {"limit": 0})["last_seq"]

    def find(self, header_name: str, value: str) -> list[dict[str, Any]]:
        """Entries whose `header_name` header has `value` (e.g. a request id)."""
        return self.journal(header=(header_name, value))

    def clear(self) -> None:
        """Forget every journaled request."""
        self._call("DELETE", "/journal")

    def stubs(self) -> list[Any]:
        """The stub list currently in force, as JSON."""
        return self._call("GET", "/stubs")["stubs"]

    def set_stubs(self, stubs: list[Any]) -> None:
        """Replace the stub list atomically; raises StubConfigError naming the bad field."""
        self._call("PUT", "/stubs", payload={"stubs": stubs})

    def _call(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        payload: Any = None,
    ) -> dict[str, Any]:
        url = f"{self.control_url}{PREFIX}{path}" + (f"?{urlencode(query)}" if query else "")
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code == 400 and path == "/stubs":
                raise StubConfigError(message) from None
            raise MockClientError(f"{method} {url} answered {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MockClientError(f"cannot reach the mock at {url} ({reason}); is it running?") from None
        except ValueError as exc:
            raise MockClientError(f"{method} {url} answered with something other than JSON ({exc})") from None


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The `error` field of a JSON error reply, else its raw text."""
    raw = exc.read().decode("utf-8", "replace")
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw or exc.reason
