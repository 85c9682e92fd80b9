"""A crashing wasm-go plugin on a real Envoy (native runtime), explained: a panic at start fails `up` with its
message and line; a panic during a request shows as lines trimmed to the plugin's frames wherever plugin
logs are shown; after a VM trap the plugin follows its failure_policy and `status` says it crashed.

The plugin is tests/sdk_plugins/crashy (its config `panic_at` picks where it fails)."""

from __future__ import annotations

import http.client
import re
import subprocess
import sys

import pytest

from support import Project, wait_for

pytestmark = pytest.mark.slow

FRAME = re.compile(r"^\s*at main\.\w+ \(\S*main\.go:\d+\)$", re.MULTILINE)


def _project(factory, wasm, name: str, inspect: bool = False, **plugin) -> Project:
    return factory({"gateway": {"port": 0, "inspect": inspect},
                    "plugins": [{"name": "crashy", "wasm": "crashy.wasm", **plugin}]},
                   files={"crashy.wasm": wasm}, name=name, runtime="native")


def _get(project: Project, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", project.state()["gateway_port"], timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _stat(project: Project, name: str) -> str:
    from higress_local.system.readiness import admin_stats

    stats = admin_stats(f"http://127.0.0.1:{project.state()['admin_port']}", "^" + re.escape(name) + "$")
    return stats.get(name, "")


def _assert_panic_as_lines(text: str, message: str) -> None:
    assert message in text, text
    assert "\\n" not in text and "goroutine" not in text, text  # real lines, not Go's whole dump
    frames = FRAME.findall(text)
    assert frames and not any("wasm-go" in f or "runtime/" in f for f in frames), text


def test_a_panic_at_start_fails_up_with_the_message_and_the_plugins_line(make_project, sdk_plugin_wasm) -> None:
    project = _project(make_project, sdk_plugin_wasm("crashy"), "crashstart", config={"panic_at": "start"})
    up = project.hlocal("up")
    assert up.returncode == 4, up
    assert "plugin 'crashy' panicked while starting: boom at start" in up.stderr, up
    assert re.search(r"at main\.parseConfig \(\S*main\.go:\d+\)", up.stderr), up
    logged = project.hlocal("logs", "--plugin")
    _assert_panic_as_lines(logged.stdout, "crashy: panic: boom at start")


@pytest.fixture(scope="module")
def panicking(module_projects, sdk_plugin_wasm) -> Project:
    project = _project(module_projects, sdk_plugin_wasm("crashy"), "crashreq", inspect=True,
                       config={"panic_at": "request"})
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def test_a_request_panic_shows_as_lines_in_request_and_logs(panicking: Project) -> None:
    sent = panicking.hlocal("request", "GET", "/boom")
    assert sent.returncode == 0, sent
    assert "< 200" in sent.stdout  # wasm-go recovered it and the request went on
    _assert_panic_as_lines(sent.stdout, "plugin log: crashy: panic: boom in request (recovered by wasm-go")
    logged = panicking.hlocal("logs", "--plugin", "-t")
    _assert_panic_as_lines(logged.stdout, "crashy: panic: boom in request")
    assert "[crashy]" not in logged.stdout and "[nil]" not in logged.stdout  # the name once
    assert re.search(r"^\d{4}-\d\d-\d\dT[\d:.]+Z crashy: panic", logged.stdout, re.MULTILINE), logged


def test_the_inspector_shows_the_panic_of_its_request_as_lines(panicking: Project) -> None:
    assert _get(panicking, "/inspected") == 200

    def shown() -> str | None:  # the collector joins a request's log lines to it shortly after it ends
        listed = panicking.hlocal("inspect", "--json", "-n", "50")
        rows = [r for r in listed.json()["requests"] if r["path"] == "/inspected"] if listed.returncode == 0 else []
        text = panicking.hlocal("inspect", str(rows[0]["id"])).stdout if rows else ""
        return text if "plugin log lines:" in text else None

    text = wait_for(shown, timeout=20, what="/inspected with its plugin log lines in `hlocal inspect ID`")
    _assert_panic_as_lines(text, "crashy: panic: boom in request")
    assert "[crashy]" not in text


def test_a_later_up_does_not_call_request_panics_start_warnings(panicking: Project) -> None:
    assert _get(panicking, "/before-up") == 200  # logs a recovered panic at error level
    again = panicking.hlocal("up")
    assert again.returncode == 0, again
    assert "logged while starting" not in again.stderr, again


def test_a_failing_test_reports_the_exchange_once_and_the_panic_as_lines(panicking: Project) -> None:
    report = _failing_test_report(panicking, "gateway.get('/reported')\n    assert upstream.last().path == '/x'")
    assert report.count("hlocal: last exchange") == 1, report
    assert report.count("1. request as the client sent it") == 1, report  # gateway.inspect: the inspector's views
    assert report.count("plugin log lines:") == 0 and report.count("plugin logs during the test") == 1, report
    _assert_panic_as_lines(report.split("plugin logs during the test", 1)[1], "crashy: panic: boom in request")


@pytest.mark.parametrize("policy", ["FAIL_RELOAD", "FAIL_CLOSED"])
def test_after_a_trap_the_plugin_follows_its_failure_policy(make_project, sdk_plugin_wasm, policy: str) -> None:
    project = _project(make_project, sdk_plugin_wasm("crashy"), f"trap-{policy.lower()}",
                       config={"panic_at": "trap"}, **({"failure_policy": policy} if policy != "FAIL_RELOAD" else {}))
    up = project.hlocal("up")
    assert up.returncode == 0, up
    trapped = project.hlocal("request", "GET", "/trap")
    assert "< 503" in trapped.stdout, trapped
    assert "note: plugin crashy crashed: its VM trapped" in trapped.stdout and "at main.recurse" in trapped.stdout
    assert f"failure_policy {policy}" in trapped.stdout, trapped
    # Two workers, each with its own VM: only requests on the trapped one tell the policies apart.
    statuses = [_get(project, f"/after/{n}") for n in range(40)]
    if policy == "FAIL_RELOAD":  # as on Higress: a fresh VM serves the next request
        assert set(statuses) == {200}, statuses
        assert _stat(project, "wasm.crashy.vm_reload_success") == "1"
    else:
        assert 503 in statuses and 200 in statuses, statuses
        assert _stat(project, "wasm.crashy.vm_reload_success") == "0"
    status = project.hlocal("status")
    assert "crashed 1x, last: Uncaught RangeError: Maximum call stack size exceeded" in status.stdout, status
    doc = project.hlocal("status", "--json").json()
    assert len(doc["plugins"][0]["crashes"]) == 1
    if policy == "FAIL_CLOSED":
        return  # the trapped VM stays failed: a request in a test may meet it and trap nothing new
    report = _failing_test_report(project, "gateway.get('/trap-in-test')\n    assert False")
    assert "hlocal: plugin crashes during the test" in report, report
    assert "plugin crashy crashed: its VM trapped: Uncaught RangeError" in report and "at main.recurse" in report


def _failing_test_report(project: Project, body: str) -> str:
    """The output of a one-test pytest session against the running stack whose test runs `body` and fails."""
    (project.path / "test_report.py").write_text(f"def test_fails(gateway, upstream):\n    {body}\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_report.py"],
                          cwd=project.path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout
