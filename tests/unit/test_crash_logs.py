"""Go panics and VM traps as Envoy logged them (captured from stock Envoy 1.40 running tests/sdk_plugins/crashy),
made readable: fragments joined, the plugin's own frames kept, each said once."""

from __future__ import annotations

from pathlib import Path

from higress_local.gatewaylog.classify import classify_lines, plugin_traps, start_panic
from higress_local.gatewaylog.logs import LogLine, LogView, reassemble, short_plugin_line
from higress_local.gatewaylog.panics import join_fragments, panic_in
from higress_local.probe.observe import startup_warnings

DATA = Path(__file__).resolve().parent.parent / "data" / "crashes"
PREFIX = "[2026-12-07 12:21:09.281][25686][error][wasm] [source/extensions/common/wasm/context.cc:1157] "
# wasm-go's recoverFunc logs the stack in one line; Envoy prints its newlines as a backslash and n.
RECOVERED = PREFIX + (
    "wasm log crashy crashy crashy: [crashy] [nil] [a458951d] recovered from panic boom in request, stack: "
    "goroutine 1 [running]:\\ngithub.com/higress-group/wasm-go/pkg/wrapper.recoverFunc()\\n"
    "\tgithub.com/higress-group/wasm-go@v1.1.1/pkg/wrapper/plugin_wrapper.go:1284 +0xb\\n"
    "panic({0x2a2568, 0x1e1a0})\\n\truntime/panic.go:859 +0x1c\\nmain.explode(...)\\n"
    "\thlocaltest/sdk/crashy/main.go:42\\nmain.onRequestHeaders({0x2c83d8, 0x466240}, {{0x46415d, 0x7}})\\n"
    "\thlocaltest/sdk/crashy/main.go:34 +0x11\\n"
    "github.com/higress-group/wasm-go/pkg/wrapper.(*CommonHttpCtx[...]).OnHttpRequestHeaders(0x21aa0, 0x9, 0x1)\\n"
    "\tgithub.com/higress-group/wasm-go@v1.1.1/pkg/wrapper/plugin_wrapper.go:1086 +0xb3\\n")


def start_lines() -> list[str]:
    return (DATA / "start_panic.log").read_text().splitlines()


def test_go_dump_fragments_are_joined_back_into_gos_own_text():
    # Each write of Go's print lost one trailing newline (proxy-wasm-cpp-host writevImpl).
    assert join_fragments(["panic: ", "boom", "", "", "goroutine ", "1", " [", "running", "]", ":",
                           "main.f", "(", "...", ")", "\t", "x/main.go", ":", "7", " +", "0x1", ""]) == \
        "panic: boom\n\ngoroutine 1 [running]:\nmain.f(...)\n\tx/main.go:7 +0x1\n"


def test_a_start_panic_becomes_one_line_with_the_message_and_the_plugins_frame():
    lines = start_lines()
    joined = reassemble(lines)
    assert len(joined) < len(lines) - 100  # ~130 fragments became one line
    panics = [panic_in(line.split(": ", 1)[1].split("crashy: ", 1)[-1]) for line in joined if "panic: " in line]
    assert [(p.message, p.frames) for p in panics if p] == [
        ("boom at start", [("main.parseConfig", "hlocaltest/sdk/crashy/main.go:26")])]
    assert start_panic(lines, "crashy") == panics[0]
    assert start_panic(lines, "other") is None


def test_up_fails_with_the_panic_and_its_line_not_rejected_configuration():
    error = classify_lines(start_lines(), ["crashy"])
    assert error is not None and error.exit_code == 4
    assert error.message == ("plugin 'crashy' panicked while starting: boom at start\n"
                             "  at main.parseConfig (hlocaltest/sdk/crashy/main.go:26)")


def test_a_recovered_panic_shows_as_lines_trimmed_to_the_plugins_frames():
    assert short_plugin_line(RECOVERED) == (
        "crashy: panic: boom in request (recovered by wasm-go; the request went on)\n"
        "  at main.explode (hlocaltest/sdk/crashy/main.go:42)\n"
        "  at main.onRequestHeaders (hlocaltest/sdk/crashy/main.go:34)")


def test_logs_prefix_every_line_of_a_panic():
    shown = LogView().render(LogLine("gateway", RECOVERED, None)).splitlines()
    assert len(shown) == 3 and all(line.startswith("gateway | ") for line in shown)
    assert "\\n" not in "".join(shown)


def test_a_plugin_line_says_the_plugin_name_once():
    line = PREFIX.replace("[error]", "[info]") + "wasm log my-plugin my-plugin my-plugin: [my-plugin] [nil] [nil] hi"
    assert short_plugin_line(line) == "my-plugin: hi"


def test_logs_t_prints_a_lines_own_time_once():
    backend = "[2026-12-07T12:21:09.289Z] backend GET /x 200 2.1ms"
    shown = LogView(timestamps=True, prefix=False).render(LogLine("backend", backend, 1796646069.289))
    assert shown == "2026-12-07T12:21:09.289Z backend GET /x 200 2.1ms"


def test_start_warnings_leave_out_what_a_request_logged():
    lines = [RECOVERED, PREFIX + "wasm log crashy crashy: [crashy] [nil] [nil] bad config, deny all"]
    assert startup_warnings(lines) == ["error: crashy: bad config, deny all"]


def test_a_trap_names_the_callback_the_reason_and_the_plugins_frame_once():
    lines = (DATA / "trap.log").read_text().splitlines()
    ((plugin, trap),) = plugin_traps(lines, ["crashy"])
    assert plugin == "crashy"
    assert trap.summary() == ("Uncaught RangeError: Maximum call stack size exceeded in proxy_on_request_headers "
                              "at main.recurse")


def test_with_several_plugins_a_trap_goes_to_the_one_that_last_logged_on_its_thread():
    lines = (DATA / "trap.log").read_text().splitlines()  # crashy logged on another thread than the trap's
    assert [p for p, _ in plugin_traps(lines, ["crashy", "other"])] == [None]
    said = "[2026-12-07 12:29:57.880][6827][info][wasm] [context.cc:1151] wasm log other other other: [other] hi"
    assert [p for p, _ in plugin_traps([said, *lines], ["crashy", "other"])] == ["other"]


def test_a_panic_in_init_names_no_plugin_yet_and_still_fails_up_with_its_line():
    # Go's init() runs before the plugin has a context: Envoy logs "wasm log: ..." with no names.
    lines = (DATA / "init_panic.log").read_text().splitlines()
    error = classify_lines(lines, ["my-plugin"])
    assert error is not None and error.exit_code == 4
    assert error.message == ("plugin 'my-plugin' panicked while starting: boom in init\n"
                             "  at main.init.0 (/home/dev/my-plugin/main.go:27)")
    shown = [short_plugin_line(line) for line in reassemble(lines) if "panic: " in line]
    assert shown == ["(plugin VM): panic: boom in init\n  at main.init.0 (/home/dev/my-plugin/main.go:27)"]


def test_a_trap_at_start_without_a_go_dump_fails_up_with_the_engines_words_and_the_frame():
    lines = [line for line in (DATA / "init_panic.log").read_text().splitlines() if "wasm log: " not in line]
    error = classify_lines(lines, ["my-plugin"])
    assert error is not None and error.exit_code == 4
    assert error.message == ("plugin 'my-plugin' crashed while starting: Uncaught RuntimeError: unreachable "
                             "in _initialize at main.init.0")
