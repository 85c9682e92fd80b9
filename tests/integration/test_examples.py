"""Smoke suites as users run them: examples/hello with `hlocal test` and plain pytest on both runtimes,
`hlocal test`'s build and exit status, and `hlocal init`'s output passing as written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support import Project, Result

pytestmark = pytest.mark.slow

HELLO = Path(__file__).resolve().parents[2] / "examples" / "hello"
TIMEOUT = 300.0


def run_pytest(directory: Path, *args: str) -> Result:
    """Plain `pytest` in a project directory, as the README shows it."""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=directory, env=dict(os.environ))
    return Result(argv, done.returncode, done.stdout, done.stderr)


def assert_nothing_left(project: Project) -> None:
    assert project.leftovers() == []
    assert project.state() is None


@pytest.fixture
def hello(tmp_path_factory, make_project, transformer_wasm, runtime) -> Project:
    """examples/hello as shipped, next to the transformer it expects in ../transformer/build/."""
    root = tmp_path_factory.mktemp(f"examples-{runtime}")
    shutil.copytree(HELLO, root / "hello", ignore=shutil.ignore_patterns(".hlocal", "__pycache__"))
    (root / "transformer" / "build").mkdir(parents=True)
    shutil.copyfile(transformer_wasm, root / "transformer" / "build" / "transformer.wasm")
    config = yaml.safe_load((root / "hello" / "hlocal.yaml").read_text())
    project = Project(path=root / "hello", config=config)  # the stack is named after the directory
    make_project.made.append(project)
    return project


def test_the_readme_smoke_tests_are_an_excerpt_of_examples_hello() -> None:
    readme = (HELLO.parents[1] / "README.md").read_text()
    section = readme[readme.index("## Smoke tests with pytest"):]
    snippet = section[section.index("```python\n") + 10:section.index("```\n", section.index("```python\n") + 10)]
    tests = (HELLO / "tests" / "test_smoke.py").read_text()
    chunks = [chunk for chunk in snippet.split("\n\n\n") if chunk.strip()]
    assert len(chunks) >= 3
    for chunk in chunks:
        assert chunk.strip() in tests, chunk


def test_hello_passes_with_hlocal_test(hello: Project, runtime) -> None:
    result = hello.hlocal("test", "--runtime", runtime, timeout=TIMEOUT)
    assert result.returncode == 0, result
    assert "8 passed" in result.stdout
    assert f"hlocal: hello is up on the {runtime} runtime" in result.stderr
    assert "hlocal: stopped hello" in result.stderr
    assert_nothing_left(hello)


def test_hello_passes_with_plain_pytest(hello: Project, runtime) -> None:
    result = run_pytest(hello.path, "--hlocal-runtime", runtime)
    assert result.returncode == 0, result
    assert "8 passed" in result.stdout
    assert_nothing_left(hello)


def test_hlocal_test_builds_first_and_exits_with_pytests_status(make_project, plugin_wasm) -> None:
    project = make_project(
        {"runtime": "native", "gateway": {"port": 0},
         "plugins": [{"name": "logger", "wasm": "build/logger.wasm", "config": {},
                      "build": {"command": ["cp", str(plugin_wasm("logger")), "build/logger.wasm"], "dir": "."}}]},
        name="built")
    (project.path / "build").mkdir()
    (project.path / "tests").mkdir()
    (project.path / "tests" / "test_smoke.py").write_text(
        "def test_reaches_the_backend(gateway, upstream):\n"
        "    gateway.get('/x')\n"
        "    assert upstream.last().path == '/x'\n\n"
        "def test_fails(gateway):\n"
        "    assert gateway.get('/x').status_code == 404\n\n"
        "def test_deselected():\n"
        "    raise AssertionError('-k must deselect this one')\n")
    result = project.hlocal("test", "--", "-k", "not deselected", timeout=TIMEOUT)
    assert result.returncode == 1, result  # pytest's: a test failed
    assert "built logger in" in result.stderr
    assert (project.path / "build" / "logger.wasm").is_file()
    assert "1 failed, 1 passed, 1 deselected" in result.stdout
    assert_nothing_left(project)


def test_hlocal_init_output_passes_as_written(tmp_path, make_project, plugin_wasm) -> None:
    plugin_dir = tmp_path / "my_plugin"
    plugin_dir.mkdir()
    shutil.copyfile(plugin_wasm("headers"), plugin_dir / "main.wasm")
    project = Project(path=plugin_dir, config={"name": "my_plugin"})
    make_project.made.append(project)  # its cleanup stops the stack and checks for leftovers
    init = project.hlocal("init")
    assert init.returncode == 0, init
    assert f"wrote {plugin_dir / 'hlocal.yaml'}" in init.stdout
    assert (plugin_dir / "tests" / "test_smoke.py").is_file()
    again = project.hlocal("init")
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr, again

    tested = project.hlocal("test", "--keep", timeout=TIMEOUT)
    assert tested.returncode == 0, tested
    assert "1 passed" in tested.stdout and "left running" in tested.stderr
    assert project.hlocal("probe").returncode == 0  # the probe hlocal.yaml was written with
    plain = run_pytest(plugin_dir)  # reuses the running stack and leaves it running
    assert plain.returncode == 0, plain
    assert "1 passed" in plain.stdout and "left running (it was already running)" in plain.stdout
    down = project.hlocal("down")
    assert down.returncode == 0 and "stopped" in down.stdout, down
    assert_nothing_left(project)


def test_make_demo_installs_only_what_the_demo_needs(tmp_path) -> None:
    """`make demo` must not pull the dev extra (pytest, Go, wasmtime, compose: ~600 MB)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[2]
    # A fresh venv path: make prints the whole recipe chain it would run (-n runs nothing).
    plan = subprocess.run(["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"], cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    installs = [line for line in plan.stdout.splitlines() if "pip install" in line]
    assert installs and all("[dev]" not in line for line in installs), installs
    assert any("-e . gpustack-higress-plugins" in line for line in installs), installs
    demo = yaml.safe_load((root / "examples" / "transformer" / "hlocal.yaml").read_text())
    assert demo.get("runtime", "auto") in ("auto", "native")  # the demo runs without Docker


def test_the_readme_installs_from_a_checkout_or_git_and_activates_the_venv() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    install = readme.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "pipx install ./" in install and "pip install 'git+" in install
    assert ". .venv/bin/activate" in install
    assert "pip install higress-local" not in readme  # not published: it would fail
    assert "_HLOCAL_COMPLETE=bash_source hlocal" in install  # shell completion
    assert "manylinux_2_31_x86_64" in install and "docker runtime" in install  # platforms
