"""`hlocal logs`: lines of several files merged by their timestamps, --since, -t, short plugin lines."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from higress_local.errors import ConfigError
from higress_local.gatewaylog.logs import (
    LogLine, LogView, follow_files, line_time, merge, parse_since, short_plugin_line, timed,
)


def local(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").timestamp()


def test_line_times_of_each_program():
    assert line_time("[2026-12-02 08:48:14.970][19436][info][main] starting") == local("2026-12-02 08:48:14.970")
    assert line_time("2026-12-02T08:48:15.5Z backend GET / 200") == datetime(
        2026, 12, 2, 8, 48, 15, 500000, tzinfo=timezone.utc).timestamp()
    assert line_time('{"start_time": "2026-12-02T08:48:16.000Z", "method": "GET"}') == datetime(
        2026, 12, 2, 8, 48, 16, tzinfo=timezone.utc).timestamp()
    assert line_time('{"time": 1700000000.25}') == 1700000000.25
    assert line_time("1234:M 02 Dec 2026 08:48:17.000 * Ready to accept connections") == local("2026-12-02 08:48:17.000")
    assert line_time("backend GET /x 200 1.0ms") is None


def test_merge_orders_by_time_and_keeps_each_files_order():
    gateway = timed("gateway", ["[2026-12-02 08:00:01.000][1][info][main] g1",
                                "[2026-12-02 08:00:03.000][1][info][main] g3"])
    backend = timed("backend", ["2026-12-02T08:00:00.500 b0", "2026-12-02T08:00:02.000 b2", "untimed after b2"])
    merged = [line.text.split()[-1] for line in merge([gateway, backend])]
    assert merged == ["b0", "g1", "b2", "b2", "g3"]


def test_short_plugin_lines():
    raw = ("[2026-12-02 08:48:20.113][1][info][wasm] [source/extensions/common/wasm/context.cc:1151] "
           "wasm log my-plugin my-plugin my-plugin: [my-plugin] plugin start successfully")
    assert short_plugin_line(raw) == "my-plugin: plugin start successfully"
    assert short_plugin_line("... wasm log hlocal.bridge hlocal.bridge : x") is None
    assert short_plugin_line("[2026-12-02 08:48:20.113][1][info][main] starting") is None


def test_since():
    now = 1_000_000.0
    assert parse_since("10s", now) == now - 10
    assert parse_since("5m", now) == now - 300
    assert parse_since("1h30m", now) == now - 5400
    assert parse_since("2026-12-02T10:00:00Z") == datetime(2026, 12, 2, 10, tzinfo=timezone.utc).timestamp()
    with pytest.raises(ConfigError, match="--since 'yesterday'"):
        parse_since("yesterday", now)


def test_view_renders_prefix_timestamps_and_filters():
    line = LogLine("gateway", "[2026-12-02 08:00:01.000][1][info][main] ready", 1_700_000_000.0)
    assert LogView(width=8).render(line) == "gateway | [2026-12-02 08:00:01.000][1][info][main] ready"
    assert LogView(prefix=False, timestamps=True).render(line) == "2023-11-14T22:13:20.000Z [1][info][main] ready"
    assert not LogView(since=1_700_000_001.0).keep(line)
    assert not LogView(plugin_only=True).keep(line)


def test_follow_files_merges_tails_and_follows(tmp_path):
    (tmp_path / "gateway.log").write_text(
        "[2026-12-02 08:00:01.000][1][info][main] g1\n"
        "[2026-12-02 08:00:03.000][1][info][wasm] wasm log p p p: [p] hello\n")
    (tmp_path / "backend.log").write_text("2026-12-02T08:00:02.000 b2\n")
    files = {"backend": tmp_path / "backend.log", "gateway": tmp_path / "gateway.log"}
    out = list(follow_files(files, plugin_only=False, follow=False, tail=None, prefix=True))
    assert [o.split("| ", 1)[0].strip() for o in out] == ["gateway", "backend", "gateway"]
    assert out[-1] == "gateway | p: hello"
    assert list(follow_files(files, plugin_only=True, follow=False, tail=1, prefix=False)) == ["p: hello"]
    calls = []

    def stop() -> bool:  # the first poll finds a line written after the backlog was read
        calls.append(1)
        if len(calls) == 1:
            with open(tmp_path / "backend.log", "a") as handle:
                handle.write("2026-12-02T08:00:04.000 b4\n")
        return len(calls) > 2

    followed = list(follow_files(files, plugin_only=False, follow=True, tail=0, prefix=False, poll=0, stop=stop))
    assert followed == ["2026-12-02T08:00:04.000 b4"]  # the tail of 0 showed nothing old; then the new line


def test_request_shows_plugin_lines_as_logs_does():
    from types import SimpleNamespace

    from higress_local.probe.exchanges import effects_lines

    raw = ("[2026-12-02 08:48:20.113][1][info][wasm] [source/extensions/common/wasm/context.cc:1151] "
           "wasm log my-plugin my-plugin my-plugin: [my-plugin] [nil] [3002fe61] added x-my-plugin to /hello")
    effects = SimpleNamespace(service_calls={}, plugin_lines=[raw], notes=[])
    assert effects_lines(SimpleNamespace(effects=effects)) == [
        "plugin log: my-plugin: added x-my-plugin to /hello", ""]  # the name once, not three times


def test_plugin_lines_in_a_test_report_keep_their_time():
    from higress_local.gatewaylog.logs import timed_plugin_line

    raw = ("[2026-12-02 08:48:20.113][1][info][wasm] [source/extensions/common/wasm/context.cc:1151] "
           "wasm log logger logger logger: [logger] GET /api/x")
    assert timed_plugin_line(raw) == "08:48:20.113 logger: GET /api/x"
    assert timed_plugin_line("not a plugin line") == "not a plugin line"
