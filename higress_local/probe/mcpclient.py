"""Talk to an MCP server on the gateway (Streamable HTTP) with the reference MCP client SDK, synchronously.

The SDK (`mcp`) is async; `McpClient` runs one `ClientSession` on an event loop in a thread of its
own (anyio's blocking portal) so that the CLI, probes and plain pytest tests can call it directly.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Sequence

from ..errors import ConfigError, EnvironmentProblem, HlocalError, McpCallFailed, WaitTimeout
from ..config.mcp import DEFAULT_PATH, DEFAULT_TIMEOUT
from ..config.validate import check_path
LOGS_HINT = "`hlocal logs --plugin` shows what the plugin logged"


@dataclass
class ToolResult:
    """One tools/call as the client saw it: the text content joined, and the whole result as JSON."""

    tool: str
    arguments: dict[str, Any]
    is_error: bool
    text: str
    result: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "arguments": self.arguments, "is_error": self.is_error, "text": self.text,
                "result": self.result}


class McpClient:
    """A connected, initialised MCP session on `url`, usable from synchronous code.

    `session` is the SDK's own `mcp.ClientSession`; `call(session.method, ...)` runs any of its
    coroutines on the session's loop. Use it as a context manager: leaving it closes the session
    (an HTTP DELETE when the server gave a session id) and stops the loop's thread.
    """

    def __init__(self, url: str, *, headers: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.session: Any = None
        self.statuses: list[int] = []  # the HTTP status of every POST, in order (the last: the latest call)
        self._portal_cm: Any = None
        self._portal: Any = None
        self._session_cm: Any = None

    def __enter__(self) -> "McpClient":
        from anyio.from_thread import start_blocking_portal

        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        try:
            self._session_cm = self._portal.wrap_async_context_manager(
                _open_session(self.url, self.headers, self.timeout, self.statuses))
            self.session = self._translated(self._session_cm.__enter__, "initialize")
        except BaseException:
            self._session_cm = None
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """End the session and stop the loop; safe to call twice."""
        session_cm, portal_cm = self._session_cm, self._portal_cm
        self._session_cm = self._portal_cm = self._portal = self.session = None
        try:
            if session_cm is not None:
                try:
                    session_cm.__exit__(None, None, None)
                except Exception:  # noqa: BLE001 - the server may be gone; closing must not fail the caller
                    pass
        finally:
            if portal_cm is not None:
                portal_cm.__exit__(None, None, None)

    def call(self, func: Callable[..., Any], *args: Any) -> Any:
        """Run the coroutine function `func(*args)` (e.g. `client.session.list_prompts`) on the session's loop."""
        return self._run(getattr(func, "__name__", "the call"), func, *args)

    def _run(self, what: str, func: Callable[..., Any], *args: Any) -> Any:
        if self._portal is None:
            raise EnvironmentProblem("the MCP session is closed", "use McpClient as a context manager")
        return self._translated(lambda: self._portal.call(_within, self.timeout, func, *args), what)

    def list_tools(self) -> list[Any]:
        """Every tool the server lists (the SDK's `Tool` objects), following pagination."""
        from mcp.types import PaginatedRequestParams

        tools, cursor = [], None
        while True:
            params = PaginatedRequestParams(cursor=cursor) if cursor else None
            page = self._run("tools/list", lambda: self.session.list_tools(params=params))
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    def call_tool(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """Call one tool; a tool error (`isError`) is returned as such, a JSON-RPC error raises McpCallFailed."""
        result = self._run(f"tools/call {name}", lambda: self.session.call_tool(name, arguments or {}))
        return ToolResult(tool=name, arguments=dict(arguments or {}), is_error=bool(result.is_error),
                          text=result_text(result), result=result.model_dump(by_alias=True, exclude_unset=True,
                                                                             mode="json"))

    def _translated(self, func: Callable[[], Any], what: str) -> Any:
        """Run func; the SDK's and the transport's exceptions become hlocal's typed errors."""
        try:
            return func()
        except HlocalError:
            raise
        except BaseException as exc:  # noqa: BLE001 - task groups wrap errors in ExceptionGroups
            error = translate(_innermost(exc), self.url, what, self.timeout)
            if error is None:
                raise
            raise error from exc


async def _within(timeout: float, func: Callable[..., Any], *args: Any) -> Any:
    import anyio

    with anyio.fail_after(timeout):
        return await func(*args)


@asynccontextmanager
async def _open_session(url: str, headers: dict[str, str], timeout: float, statuses: list[int]) -> AsyncIterator[Any]:
    """An initialised ClientSession over Streamable HTTP (the transport Higress's MCP servers speak)."""
    import anyio
    import httpx2  # the SDK's own HTTP client (a dependency of mcp): its transport takes one
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def record(response: Any) -> None:
        if response.request.method == "POST":
            statuses.append(response.status_code)

    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(timeout),
                                  event_hooks={"response": [record]}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=timeout) as session:
                with anyio.fail_after(timeout):
                    await session.initialize()
                yield session


def _innermost(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def translate(exc: BaseException, url: str, what: str, timeout: float) -> HlocalError | None:
    """hlocal's error for what went wrong talking to the MCP server at `url` (None: not ours to explain)."""
    from mcp.shared.exceptions import MCPError

    if isinstance(exc, MCPError):
        return McpCallFailed(f"the MCP server at {url} answered {what} with an error: {exc.message} "
                             f"(JSON-RPC code {exc.code})", _error_hint(exc.code))
    if isinstance(exc, TimeoutError):
        return WaitTimeout(f"no answer to {what} from the MCP server at {url} within {timeout:g} s", LOGS_HINT)
    if isinstance(exc, OSError) or type(exc).__module__.startswith(("httpx", "httpcore")):
        return EnvironmentProblem(f"cannot reach the MCP server at {url}: {exc or type(exc).__name__}",
                                  "is the stack up? see `hlocal status`")
    return None


def _error_hint(code: int) -> str:
    # -32601 (method not found) is also how the SDK reads a 404; -32700 a reply that is not JSON-RPC.
    if code in (-32601, -32700, -32600):
        return f"is an MCP server plugin on this path? pass --path (default {DEFAULT_PATH}); {LOGS_HINT}"
    return LOGS_HINT


def result_text(result: Any) -> str:
    """The text content of a tool result, one item per line; other content named by its type."""
    lines = []
    for item in result.content or ():
        kind = getattr(item, "type", "")
        if kind == "text":
            lines.append(item.text)
        elif kind in ("image", "audio"):
            lines.append(f"[{kind} {getattr(item, 'mime_type', '')}, {len(getattr(item, 'data', '') or '')} "
                         f"base64 characters]")
        else:
            lines.append(f"[{kind or type(item).__name__}]")
    return "\n".join(lines)


def parse_tool_args(pairs: Sequence[str], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """`key=value` and `key:=json` pairs as tool arguments.

    `key=value` is JSON where it parses (3, true, [1, 2]), else the string, except for a property the
    tool's input schema declares as a string, which always gets the text as given (a city code
    `110000` stays "110000"). `key:=json` must be JSON.
    """
    properties = (schema or {}).get("properties") or {}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, raw, forced = _split_pair(pair)
        if key in out:
            raise ConfigError(f"argument {key!r} is given twice", "give each argument once")
        if forced:
            try:
                out[key] = json.loads(raw)
            except ValueError as exc:
                raise ConfigError(f"{pair!r}: the value after := is not JSON ({exc})",
                                  f"for a string use {key}=TEXT; for JSON quote it: {key}:='{{\"a\": 1}}'") from None
        elif _wants_string(properties.get(key)):
            out[key] = raw
        else:
            out[key] = _json_or_text(raw)
    return out


def _split_pair(pair: str) -> tuple[str, str, bool]:
    key, sep, raw = pair.partition("=")
    forced = key.endswith(":")
    key = key[:-1] if forced else key
    if not sep or not key.strip():
        raise ConfigError(f"argument {pair!r}: expected key=value or key:=json",
                          "for example city=Hangzhou or days:=3 (values are JSON where they parse)")
    return key.strip(), raw, forced


def _wants_string(prop: Any) -> bool:
    if not isinstance(prop, dict):
        return False
    kind = prop.get("type")
    return kind == "string" or (isinstance(kind, list) and kind == ["string"])


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def tool_summary(tool: Any) -> dict[str, Any]:
    """A tool as `hlocal mcp tools --json` prints it."""
    return {"name": tool.name, "description": tool.description or "", "inputSchema": tool.input_schema or {}}


def describe_arguments(schema: dict[str, Any]) -> str:
    """`city (string, required), days (integer)`: a tool's arguments on one line."""
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    parts = []
    for name, prop in properties.items():
        kind = prop.get("type", "any") if isinstance(prop, dict) else "any"
        kind = "|".join(kind) if isinstance(kind, list) else kind
        parts.append(f"{name} ({kind}{', required' if name in required else ''})")
    return ", ".join(parts) or "none"


def gateway_mcp_url(gateway_url: str, path: str) -> str:
    """The MCP endpoint on the gateway; the path is checked as `hlocal request` checks its path."""
    check_path(path, "--path")
    return gateway_url + path
