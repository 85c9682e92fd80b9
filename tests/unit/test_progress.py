"""Progress lines: elapsed time on a terminal, nothing when stderr is not one."""

from __future__ import annotations

import io

from higress_local.cli.progress import Progress


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_when_not_a_terminal():
    stream = io.StringIO()
    with Progress("building x", stream=stream) as progress:
        progress.echo("  | compiling")
    assert stream.getvalue() == "  | compiling\n"
    assert progress.enabled is False


def test_the_line_says_what_and_how_long():
    now = [100.0]
    progress = Progress("starting demo (native)", detail=lambda: "Envoy is starting plugin waf",
                        stream=FakeTty(), clock=lambda: now[0])
    assert progress.enabled
    now[0] += 12.4
    assert progress.line() == "starting demo (native): Envoy is starting plugin waf (12 s)"


def test_a_failing_detail_is_left_out():
    def broken() -> str:
        raise OSError("state.json is being written")

    progress = Progress("building x", detail=broken, stream=FakeTty(), clock=lambda: 0.0)
    assert progress.line() == "building x … (0 s)"
