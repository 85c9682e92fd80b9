"""MockClient: talk to a running mock's control port with urllib only."""

from __future__ import annotations

import json
import os
import stat
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from .paths import PREFIX
from .stubs import StubConfigError

# The control port is always reached directly: an http_proxy from the environment
# would otherwise swallow requests to 127.0.0.1 or a compose service name.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MockClientError(Exception):
    """The control endpoint could not be reached, or answered with an error.

    `status` is the HTTP status of an error reply (401: token missing or wrong; 403: the Host
    header was not a loopback name), None when the mock could not be reached.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MockClient:
    """Reads the journal and changes stubs of a mock through its control URL.

    `token` is the mock's control token (the content of its --token-file, or MockServer.token);
    it is sent as `Authorization: Bearer <token>`. A mock started without one needs none.
    """

    def __init__(self, control_url: str, timeout: float = 5.0, token: str | None = None) -> None:
        self.control_url = control_url.rstrip("/")
        self.timeout = timeout
        self.token = token

    def health(self) -> dict[str, Any]:
        """The health document: {"ok": true, "name": ..., "port": ..., "control_port": ...}."""
        return self._call("GET", "/health")

    def journal(
        self,
        since: int | None = None,
        header: str | tuple[str, str] | None = None,
        limit: int | None = None,
        header_suffix: tuple[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Journal entries after `since`, optionally only those with a header value, or with a value
        of header `header_suffix[0]` ending in `header_suffix[1]`."""
        query: dict[str, Any] = {}
        if since is not None:
            query["since"] = since
        if header is not None:
            query["header"] = header if isinstance(header, str) else f"{header[0]}:{header[1]}"
        if header_suffix is not None:
            query["header_suffix"] = f"{header_suffix[0]}:{header_suffix[1]}"
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
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with _OPENER.open(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = _error_message(exc)
            if exc.code == 400 and path == "/stubs":
                # Imported here: the stubs module pulls in asyncio, which a one-shot `hlocal reload` avoids.

                raise StubConfigError(message) from None
            raise MockClientError(f"{method} {url} answered {exc.code}: {message}", exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise MockClientError(f"cannot reach the mock at {url} ({reason}); is it running?") from None
        except ValueError as exc:
            raise MockClientError(f"{method} {url} answered with something other than JSON ({exc})") from None


def read_token_file(path: str | os.PathLike[str]) -> str:
    """The control token stored in `path`; refuses a file that others than its owner may read.

    Raises OSError when it cannot be read and ValueError when it is empty or too open.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            token = handle.read(4096).strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise OSError(f"cannot read token file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise ValueError(f"token file {path} is readable by others (mode {stat.S_IMODE(mode):o}); chmod 600 it")
    if not token:
        raise ValueError(f"token file {path} is empty")
    return token


def _error_message(exc: urllib.error.HTTPError) -> str:
    """The `error` field of a JSON error reply, else its raw text."""
    raw = exc.read().decode("utf-8", "replace")
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw or exc.reason
