"""In-place reload on both runtimes: no failed request under load, bad updates never take the gateway down."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from load import LoadLoop
from support import HLOCAL, LineReader, Project, count_state_reads, wait_for

pytestmark = pytest.mark.slow

UNIT = Path(__file__).resolve().parents[1] / "unit"


def _vm_start_fails() -> bytes:
    """A module hlocal's inspection accepts but whose VM refuses to start (proxy_on_vm_start -> false)."""
    sys.path.insert(0, str(UNIT))
    from wasm_builders import plugin

    return plugin(abi="0_2_1", imports=(), extra=(
        '(func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 0)'
        '(func (export "proxy_on_context_create") (param i32 i32))'))


def _headers_config(version: str, **extra) -> dict:
    return {"response_headers": {"x-version": version}, "request_headers": {"x-hlocal": "added"}, **extra}


@pytest.fixture
def stack(make_project, plugin_wasm, runtime) -> Project:
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "headers", "wasm": "headers.wasm", "config": _headers_config("1")}]},
                           files={"headers.wasm": plugin_wasm("headers")}, name="reload", runtime=runtime)
    assert (up := project.hlocal("up")).returncode == 0, up
    return project


def _set_config(project: Project, config: dict) -> None:
    project.config["plugins"][0]["config"] = config
    project.write()


def _port(project: Project) -> int:
    return project.state()["gateway_port"]


def _markers(result, since: float) -> set:
    return {s.marker for s in result.samples if s.started >= since}


@pytest.mark.parametrize("args, said", [
    ((), "plugin headers: config changed, live in"),
    (("--restart",), "restarted the stack (--restart)"),  # the restart reuses the state reload read
])
def test_one_reload_reads_the_state_once(make_project, plugin_wasm, monkeypatch, args, said) -> None:
    from click.testing import CliRunner

    from higress_local.cli.main import main

    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "headers", "wasm": "headers.wasm", "config": _headers_config("1")}]},
                           files={"headers.wasm": plugin_wasm("headers")}, name="reads", runtime="native")
    assert (up := project.hlocal("up")).returncode == 0, up
    before = project.state()["plugins"][0]["config_sha256"]
    _set_config(project, _headers_config("2"))
    reads = count_state_reads(monkeypatch)
    result = CliRunner().invoke(main, ["-f", str(project.path), "reload", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert said in result.output
    assert len(reads) == 1, f"{len(reads)} reads of state.json"
    assert reads[0] == project.state_dir / "state.json"
    assert project.state()["plugins"][0]["config_sha256"] not in ("", before)


def test_config_and_code_reload_under_load_fail_no_request(stack: Project) -> None:
    from higress_local.wasm.module import add_custom_section

    with LoadLoop(_port(stack), threads=4) as load:
        load.wait_for_requests(100)
        _set_config(stack, _headers_config("2"))
        config_reload = stack.hlocal("reload")
        assert config_reload.returncode == 0, config_reload
        assert "plugin headers: config changed, live in" in config_reload.stdout
        # New bytes, same plugin: a rebuilt module under a new content-addressed name.
        wasm = stack.path / "headers.wasm"
        wasm.write_bytes(add_custom_section(wasm.read_bytes(), "hlocal-test", b"build 2"))
        _set_config(stack, _headers_config("3"))
        code_reload = stack.hlocal("reload")
        assert code_reload.returncode == 0, code_reload
        assert "plugin headers: module" in code_reload.stdout and "config changed" in code_reload.stdout
        done = load.result.total
        load.wait_for_requests(done + 100)
    result = load.result
    assert result.total > 300
    assert result.failed == [], f"{len(result.failed)} failed of {result.total}"
    assert result.samples[-1].marker == "3"
    status = stack.hlocal("status", "--json").json()
    assert status["plugins"][0]["sha256"] == hashlib.sha256(wasm.read_bytes()).hexdigest()
    # Old module copies are removed once no config refers to them.
    modules = sorted(p.name for p in (stack.state_dir / "modules").glob("headers-*.wasm"))
    assert len(modules) == 1, modules


def test_module_that_fails_to_load_keeps_the_old_one_serving(stack: Project) -> None:
    ecds_before = (stack.state_dir / "ecds" / "headers.json").read_text()
    with LoadLoop(_port(stack), threads=3) as load:
        load.wait_for_requests(50)
        (stack.path / "headers.wasm").write_bytes(_vm_start_fails())
        result = stack.hlocal("reload")
        done = load.result.total
        load.wait_for_requests(done + 50)
    assert result.returncode == 4, result
    assert "plugin 'headers' failed to start its VM" in result.stderr
    assert "the previous version still serves" in result.stderr
    assert load.result.failed == []
    assert {s.marker for s in load.result.samples} == {"1"}
    assert (stack.state_dir / "ecds" / "headers.json").read_text() == ecds_before
    assert len(list((stack.state_dir / "modules").glob("headers-*.wasm"))) == 1


def test_config_the_plugin_rejects_keeps_the_old_one_serving(stack: Project) -> None:
    with LoadLoop(_port(stack), threads=3) as load:
        load.wait_for_requests(50)
        _set_config(stack, _headers_config("2", reject=True))
        result = stack.hlocal("reload")
        done = load.result.total
        load.wait_for_requests(done + 50)
    assert result.returncode == 4, result
    assert "plugin 'headers' rejected its configuration" in result.stderr
    assert '"reject" is true' in result.stderr and "the previous version still serves" in result.stderr
    assert load.result.failed == []
    assert {s.marker for s in load.result.samples} == {"1"}
    # The stack still takes good updates afterwards.
    _set_config(stack, _headers_config("4"))
    assert (again := stack.hlocal("reload")).returncode == 0, again
    assert stack.hlocal("request", "GET", "/", "--json").json()["response"]["headers"]["x-version"] == "4"


def test_routes_and_stubs_reload_without_restart(stack: Project) -> None:
    pid = stack.hlocal("status", "--json").json()["components"][1]["pid"]
    stack.config["routes"] = [{"name": "slow", "prefix": "/slow", "timeout_ms": 50},
                              {"name": "default", "prefix": "/"}]
    stack.config["backend"] = {"stubs": [{"match": {"path": "/slow"}, "respond": {"status": 200, "delay_ms": 1000}},
                                         {"match": {"path": "/teapot"}, "respond": {"status": 418}}]}
    stack.write()
    result = stack.hlocal("reload")
    assert result.returncode == 0, result
    assert "routes reloaded" in result.stdout and "backend stubs updated (2 stubs; no restart)" in result.stdout
    assert stack.hlocal("status", "--json").json()["components"][1]["pid"] == pid
    assert stack.hlocal("request", "GET", "/teapot", "--json").json()["response"]["status"] == 418
    # The new route's 50 ms timeout is live: Envoy answers 504 before the stub's 1 s delay.
    assert stack.hlocal("request", "GET", "/slow", "--json").json()["response"]["status"] == 504
    assert stack.hlocal("reload").stdout.strip() == "nothing changed"


def test_a_changed_plugin_chain_needs_restart(stack: Project, plugin_wasm) -> None:
    shutil.copyfile(plugin_wasm("deny"), stack.path / "deny.wasm")
    stack.config["plugins"].insert(0, {"name": "deny", "wasm": "deny.wasm", "config": {"header": "x-deny", "status": 403}})
    stack.write()
    refused = stack.hlocal("reload")
    assert refused.returncode == 2, refused
    assert "cannot be swapped in place: the plugin chain changed" in refused.stderr
    assert "--restart" in refused.stderr
    restarted = stack.hlocal("reload", "--restart")
    assert restarted.returncode == 0, restarted
    assert "restarted the stack (--restart)" in restarted.stdout
    assert stack.hlocal("request", "GET", "/", "-H", "x-deny: 1", "--json").json()["response"]["status"] == 403


def _from_sources(make_project, runtime: str) -> Project:
    """A project built from Go sources (a copy of tests/plugins) with `build: {}`."""
    project = make_project({"gateway": {"port": 0},
                            "plugins": [{"name": "headers", "wasm": "src/headers/main.wasm", "build": {},
                                         "config": {"echo_properties": ["nothing_here"]}}]},
                           name="built", runtime=runtime)
    shutil.copytree(Path(__file__).resolve().parents[1] / "plugins", project.path / "src")
    return project


@pytest.fixture
def source_project(make_project, runtime) -> Project:
    """Built from sources, on the runtime under test."""
    return _from_sources(make_project, runtime)


@pytest.fixture
def native_source_project(make_project) -> Project:
    """Built from sources; building does not depend on the runtime, so these run once."""
    return _from_sources(make_project, "native")


def test_watch_rebuilds_and_reloads_on_a_source_edit(source_project: Project) -> None:
    project = source_project
    up = project.hlocal("up")
    assert up.returncode == 0 and "built headers" in up.stderr, up

    def property_header() -> list[str]:
        return project.hlocal("request", "GET", "/", "--json").json()["upstream"]["headers"]["x-prop-nothing_here"]

    assert property_header() == ["(missing)"]
    watcher = subprocess.Popen([*HLOCAL, "-f", str(project.path), "watch"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    output = LineReader(watcher.stdout)
    try:
        assert "watching" in output.next(120, "the watcher to start")
        source = project.path / "src" / "headers" / "main.go"
        source.write_text(source.read_text().replace('"(missing)"', '"(absent)"'))
        lines.append(_result_line(output, "the watcher to rebuild and reload"))
        assert "main.go changed" in lines[-1] and "module" in lines[-1], lines
        assert property_header() == ["(absent)"]
        # A broken edit: the watcher reports the compiler's error, the last good build keeps serving.
        source.write_text(source.read_text() + "\nfunc broken( {\n")
        lines.append(_result_line(output, "the watcher to report the broken build"))
        assert "error: building plugin 'headers' failed" in lines[-1] and "syntax error" in lines[-1], lines
        assert property_header() == ["(absent)"]
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=60)
    rest = [output.next(10, "the watcher's last lines")]
    while "stopped watching" not in rest[-1]:
        rest.append(output.next(10, "the watcher to say it stopped"))
    assert watcher.returncode == 0, rest


def _result_line(output: LineReader, what: str) -> str:
    """The watcher's next line past the progress lines (steps over a second say once what they wait for)."""
    for _ in range(10):  # a build, a check, a swap: a few such lines per change at most
        line = output.next(180, what)
        if not line.rstrip().endswith(" …"):
            return line
    raise AssertionError(f"more progress lines than steps while waiting for {what}")


def test_a_reload_off_a_terminal_says_once_what_it_waits_for(stack: Project) -> None:
    from higress_local.wasm.module import add_custom_section

    wasm = stack.path / "headers.wasm"
    wasm.write_bytes(add_custom_section(wasm.read_bytes(), "hlocal-test", b"progress"))
    done = stack.hlocal("reload", env={"HLOCAL_NO_AGENT": "1"})  # the agent answers with the result only
    assert done.returncode == 0, done
    live = float(re.search(r"live in ([0-9.]+) s", done.stdout).group(1))
    said = [line for line in done.stderr.splitlines() if line.endswith(" …")]
    assert len(said) == len(set(said)), said  # once each, not a line per tick
    compiling = f"reloading {stack.name}: Envoy is compiling plugin headers …"
    if live >= 3.0:  # checking a 4.5 MB module takes well under a second: the compile passed one
        assert compiling in said, done.stderr
    if live < 1.0:
        assert compiling not in said, done.stderr


def test_build_success_and_failure(native_source_project: Project) -> None:
    project = native_source_project
    built = project.hlocal("build")
    assert built.returncode == 0, built
    wasm = project.path / "src" / "headers" / "main.wasm"
    assert f"sha256 {hashlib.sha256(wasm.read_bytes()).hexdigest()}" in built.stdout
    assert "ABI 0.2.100" in built.stdout and f"({wasm.stat().st_size:,} bytes)" in built.stdout
    source = project.path / "src" / "headers" / "main.go"
    source.write_text(source.read_text() + "\nfunc broken( {\n")
    failed = project.hlocal("build")
    assert failed.returncode == 4, failed
    assert "building plugin 'headers' failed" in failed.stderr
    assert "main.go:" in failed.stderr and "syntax error" in failed.stderr


def test_up_builds_stale_sources_unless_told_not_to(native_source_project: Project) -> None:
    project = native_source_project
    first = project.hlocal("up", "--no-build")
    assert first.returncode == 4 and "wasm file not found" in first.stderr, first  # nothing built yet
    up = project.hlocal("up")
    assert up.returncode == 0 and "built headers" in up.stderr, up
    again = project.hlocal("up", "--recreate")
    assert again.returncode == 0 and "built headers" not in again.stderr, again  # up to date: no build
    forced = project.hlocal("up", "--recreate", "--build")
    assert forced.returncode == 0 and "built headers" in forced.stderr, forced
