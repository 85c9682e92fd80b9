"""hlocal's pytest plugin: smoke tests against the live gateway (registered through the pytest11 entry point).

Nothing starts unless a test uses one of the fixtures; projects that do not use them are not affected.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from ..errors import HlocalError
from ..settings import CONFIG_NAMES, RUNTIMES

MARKER = "hlocal_config"
REPORT_LOG_LINES = 30

_stack_key = pytest.StashKey[Any]()
_test_key = pytest.StashKey["RecordedTest"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hlocal", "hlocal: smoke tests against a live gateway")
    group.addoption("--hlocal-file", default=None, metavar="PATH",
                    help="hlocal.yaml (or its directory); default: the nearest one from the current directory up")
    group.addoption("--hlocal-runtime", default=None, choices=RUNTIMES,
                    help="override `runtime:` from hlocal.yaml")
    group.addoption("--hlocal-attach", action="store_true",
                    help="use the stack already started by `hlocal up` (and leave it running)")
    group.addoption("--hlocal-keep", action="store_true",
                    help="leave the stack running after the session (stop it with `hlocal down`)")
    group.addoption("--hlocal-mcp-path", default="/mcp", metavar="PATH",
                    help="the gateway path the mcp_session fixture connects to (default /mcp)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(plugin=None, config=None, rules=None): run this test with another config (and rules) "
        "for a plugin of hlocal.yaml, swapped in place and restored afterwards",
    )


def _fail(exc: Exception) -> None:
    hint = getattr(exc, "hint", "")
    pytest.fail(f"hlocal: {getattr(exc, 'message', exc)}" + (f"\nhint: {hint}" if hint else ""), pytrace=False)


@contextlib.contextmanager
def _hlocal_errors() -> Iterator[None]:
    """An HlocalError fails the test with its message and hint instead of a traceback."""
    try:
        yield
    except HlocalError as exc:
        _fail(exc)


def find_hlocal_file(start: Path, rootpath: Path) -> Path | None:
    """The nearest hlocal.yaml from `start` upwards, else one in the rootdir."""
    for directory in (start, *start.parents, rootpath):
        for name in CONFIG_NAMES:
            if (directory / name).is_file():
                return directory / name
    return None


@pytest.fixture(scope="session")
def hlocal_file(pytestconfig: pytest.Config) -> Path | None:
    """The hlocal.yaml the stack is started from (--hlocal-file, else found from the current directory up)."""
    given = pytestconfig.getoption("hlocal_file")
    if given:
        return Path(given).resolve()
    return find_hlocal_file(pytestconfig.invocation_params.dir, pytestconfig.rootpath)


@pytest.fixture(scope="session")
def hlocal_runtime(pytestconfig: pytest.Config) -> str | None:
    """The runtime to start the stack on (--hlocal-runtime; None: `runtime:` from hlocal.yaml)."""
    return pytestconfig.getoption("hlocal_runtime")


@pytest.fixture(scope="session")
def hlocal_stack(pytestconfig: pytest.Config, hlocal_file: Path | None, hlocal_runtime: str | None) -> Iterator[Any]:
    """The running stack for the session; stopped at the end.

    Without --hlocal-attach/--hlocal-keep the session starts a stack of its own, `<name>-<random>` on a
    free port (reusing the project's stack instead when `hlocal up` runs it): two sessions, or the
    workers of `pytest -n N`, each get one and never share state.
    """
    from ..stack import Stack

    if hlocal_file is None:
        pytest.fail(f"hlocal: no hlocal.yaml in {pytestconfig.invocation_params.dir} or its parents\n"
                    "hint: pass --hlocal-file PATH, or create one with `hlocal init`", pytrace=False)
    attach, keep = pytestconfig.getoption("hlocal_attach"), pytestconfig.getoption("hlocal_keep")
    with _hlocal_errors():
        if attach or keep:  # the project's own stack: `hlocal status/down` find it afterwards
            stack = Stack.from_file(hlocal_file, runtime=hlocal_runtime, attach=attach, keep=keep)
        else:  # a stack of this session's own (one per pytest-xdist worker), unless `hlocal up` runs one
            stack = Stack.for_session(hlocal_file, runtime=hlocal_runtime, tag=_worker_tag())
        pytestconfig.stash[_stack_key] = stack
        stack.start()
    try:
        yield stack
    finally:
        with _hlocal_errors():
            stack.close()


def _worker_tag() -> str:
    """`gw0-` under pytest-xdist (each worker is a session with a stack of its own), else empty."""
    import os

    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"{worker}-" if worker.isalnum() else ""


@dataclass
class RecordedTest:
    """What one test did through the fixtures: where the journal and the logs stood when it began."""

    stack: Any
    since: int
    marker: Any
    sessions: list[Any] = field(default_factory=list)

    def last_response(self) -> Any:
        responses = [r for s in self.sessions for r in s.responses]
        return responses[-1] if responses else None


@pytest.fixture
def hlocal_test(request: pytest.FixtureRequest, hlocal_stack: Any) -> RecordedTest:
    """This test's starting point: the backend journal's last seq and the gateway log position."""
    with _hlocal_errors():
        record = RecordedTest(stack=hlocal_stack, since=hlocal_stack.journal().last_seq(),
                            marker=hlocal_stack.log_marker())
    request.node.stash[_test_key] = record
    return record


@pytest.fixture
def gateway(hlocal_stack: Any, hlocal_test: RecordedTest) -> Iterator[Any]:
    """A requests.Session whose relative URLs go to the gateway: gateway.get("/api/x")."""
    session = hlocal_stack.session()
    hlocal_test.sessions.append(session)
    with session:
        yield session


@pytest.fixture(scope="session")
def hlocal_mcp_path(pytestconfig: pytest.Config) -> str:
    """The MCP endpoint on the gateway (--hlocal-mcp-path, default /mcp); override it in a conftest.py."""
    return pytestconfig.getoption("hlocal_mcp_path")


@pytest.fixture
def mcp_session(hlocal_stack: Any, hlocal_test: RecordedTest, hlocal_mcp_path: str) -> Iterator[Any]:
    """An initialised MCP session on the gateway (mcpclient.McpClient): .list_tools(), .call_tool(name, args),
    .session (the SDK's mcp.ClientSession) and .call(coroutine_function, *args) for the rest of its API."""
    from ..probe.mcpclient import McpClient, gateway_mcp_url

    with _hlocal_errors():
        client = McpClient(gateway_mcp_url(hlocal_stack.url, hlocal_mcp_path))
        client.__enter__()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def upstream(hlocal_test: RecordedTest) -> Any:
    """What the mock backend received during this test: upstream.last(), .all(), .of(response), .clear()."""
    from ..probe.exchanges import UpstreamJournal

    return UpstreamJournal(hlocal_test.stack.journal(), hlocal_test.since)


@pytest.fixture
def plugin_logs(hlocal_test: RecordedTest) -> Any:
    """The plugins' log lines written during this test: .lines, .assert_logged(re), .assert_not_logged(re)."""
    from ..probe.exchanges import PluginLogs

    return PluginLogs(hlocal_test.stack, hlocal_test.marker)


@pytest.fixture(autouse=True)
def _hlocal_config_marker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Applies @pytest.mark.hlocal_config for the test and restores the config afterwards."""
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        yield
        return
    if marker.args:
        pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only: plugin=, config=, rules=", pytrace=False)
    unknown = set(marker.kwargs) - {"plugin", "config", "rules"}
    if unknown:
        pytest.fail(f"@pytest.mark.{MARKER}: unknown argument {sorted(unknown)[0]!r} (use plugin=, config=, rules=)",
                    pytrace=False)
    stack = request.getfixturevalue("hlocal_stack")
    request.getfixturevalue("hlocal_test")  # the test's logs then include what the plugin says on configure
    with _hlocal_errors():
        swap = stack.reconfigure(**marker.kwargs)
        swap.__enter__()
    try:
        yield
    finally:
        with _hlocal_errors():
            swap.__exit__(None, None, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used the gateway shows the last exchange and what the plugins logged."""
    outcome = yield
    report = outcome.get_result()
    record = item.stash.get(_test_key, None)
    if record is None or report.when != "call" or not report.failed:
        return
    try:
        sections = _report_sections(record)
    except Exception as exc:  # the stack may be gone; the test's own failure matters more
        sections = [("hlocal", f"(could not collect the exchange: {exc})")]
    report.sections.extend(sections)


def _report_sections(record: RecordedTest) -> list[tuple[str, str]]:
    from ..inspect.view import capturing, format_record, record_for_request
    from ..probe.exchanges import UpstreamJournal, exchange_of, format_exchange

    sections = []
    response = record.last_response()
    if response is not None:
        captured = None
        layout = record.stack.state.layout
        if capturing(record.stack.project.state_dir, layout.inspect_dir if layout else None):
            # gateway.inspect: the four views and the plugins' diff
            captured = record_for_request(record.stack.project.state_dir,
                                          response.request.headers.get("x-hlocal-request-id", ""))
        if captured is not None:  # the exchange once: the inspector's views hold what the backend received
            sections.append(("hlocal: last exchange, as the inspector saw it (client, plugins, upstream)",
                             "\n".join(format_record(captured, plugin_logs=False))))
        else:
            received = UpstreamJournal(record.stack.journal(), record.since).of(response)
            lines = format_exchange(exchange_of(response, received))
            sections.append(("hlocal: last exchange (client response, then what the backend received)",
                             "\n".join(lines)))
    logged = record.stack.plugin_logs_since(record.marker)
    if logged:
        from ..gatewaylog.logs import timed_plugin_line

        shown = [timed_plugin_line(line) for line in logged[-REPORT_LOG_LINES:]]
        more = f"({len(logged) - len(shown)} earlier lines not shown)\n" if len(logged) > len(shown) else ""
        sections.append(("hlocal: plugin logs during the test", more + "\n".join(shown)))
    crashes = _crash_notes(record)
    if crashes:
        sections.append(("hlocal: plugin crashes during the test", "\n".join(crashes)))
    return sections


def _crash_notes(record: RecordedTest) -> list[str]:
    """The VM traps in the gateway's output since the test started, and what they mean for later requests."""
    from ..gatewaylog.classify import plugin_traps
    from ..probe.observe import crash_note

    project = record.stack.project
    traps = plugin_traps(record.marker.lines, [p.name for p in project.plugins])
    return [crash_note(project, plugin, trap.summary()) for plugin, trap in traps]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say so when the session leaves a stack running that the user did not start by hand."""
    stack = config.stash.get(_stack_key, None)
    if stack is None or not stack.started or not (stack.keep or stack.reused):
        return
    why = "--hlocal-keep" if stack.keep else "it was already running"
    terminalreporter.write_line(
        f"hlocal: stack {stack.project.name!r} ({stack.runtime_name}, {stack.url}) left running ({why}); "
        f"stop it with `hlocal -f {stack.project.file} down`")
