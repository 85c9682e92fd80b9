"""Progress: elapsed time on a terminal; off one, a line per step that passes a second (build, reload, down)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from higress_local.cli.main import main
from higress_local.cli.progress import Phases, Progress


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_a_step_over_a_second_says_once_what_it_waits_for():
    now = [100.0]
    doing = ["preparing"]
    stream = io.StringIO()
    progress = Progress("starting demo", detail=lambda: doing[0], stream=stream, clock=lambda: now[0])
    assert progress.tty is False
    now[0] += 0.5
    progress.tick()
    assert stream.getvalue() == ""  # under a second: nothing yet
    now[0] += 0.7
    progress.tick()
    now[0] += 5.0
    progress.tick()  # the same wait: not said again
    doing[0] = "Envoy is starting plugin x"
    progress.tick()
    assert stream.getvalue() == "starting demo: preparing …\nstarting demo: Envoy is starting plugin x …\n"


def test_a_short_step_off_a_terminal_prints_only_its_own_output():
    stream = io.StringIO()
    with Progress("building x", stream=stream) as progress:
        progress.echo("  | compiling")
    assert stream.getvalue() == "  | compiling\n"


def test_phases_echo_above_the_current_step_and_plainly_between_steps():
    stream = FakeTty()
    phases = Phases(stream=stream)
    phases.echo("before")
    with phases.phase("building x") as progress:
        progress._width = 12  # a progress line is showing
        phases.echo("  | go: downloading")
    assert phases.current is None
    assert stream.getvalue() == "before\n\r" + " " * 12 + "\r  | go: downloading\n"


def _slow_build_project(tmp_path: Path, seconds: float) -> Path:
    (tmp_path / "plug").mkdir()
    (tmp_path / "plug" / "build.py").write_text(
        "import time\n"
        f"time.sleep({seconds})  # the build's own duration\n"
        "open('main.wasm', 'wb').write(b'\\0asm\\x01\\0\\0\\0')\n")
    (tmp_path / "hlocal.yaml").write_text(
        "name: slow\nplugins:\n  - name: plug\n    wasm: plug/main.wasm\n"
        f"    build: {{command: [{sys.executable}, build.py]}}\n")
    return tmp_path


@pytest.mark.parametrize("seconds, announced", [(1.8, True), (0.0, False)])
def test_build_off_a_terminal_announces_a_build_over_a_second(tmp_path: Path, seconds: float, announced: bool):
    project = _slow_build_project(tmp_path, seconds)
    result = CliRunner().invoke(main, ["-f", str(project), "build"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("building plug …\n") == (1 if announced else 0), result.stderr
    assert result.stdout.startswith("built plug in ")
def test_the_line_says_what_and_how_long():
    now = [100.0]
    progress = Progress("starting demo (native)", detail=lambda: "Envoy is starting plugin waf",
                        stream=FakeTty(), clock=lambda: now[0])
    assert progress.tty
    now[0] += 12.4
    assert progress.line() == "starting demo (native): Envoy is starting plugin waf (12 s)"


def test_a_failing_detail_is_left_out():
    def broken() -> str:
        raise OSError("state.json is being written")

    progress = Progress("building x", detail=broken, stream=FakeTty(), clock=lambda: 0.0)
    assert progress.line() == "building x … (0 s)"


def test_down_says_which_components_it_still_waits_for(tmp_path: Path):
    import os
    import subprocess
    from types import SimpleNamespace

    from higress_local.cli.main import _down_detail
    from higress_local.system.orphans import COMPONENT_MARKER, STACK_MARKER, stack_marker

    project = SimpleNamespace(state_dir=tmp_path)
    assert _down_detail(project) == "stopping what is left"  # nothing of the stack runs
    marked = dict(os.environ, **{STACK_MARKER: stack_marker(tmp_path), COMPONENT_MARKER: "gateway"})
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE,
                             env=marked)
    try:
        assert _down_detail(project) == "waiting for gateway to exit"
    finally:
        child.communicate(b"", timeout=30)
    assert _down_detail(project) == "stopping what is left"
