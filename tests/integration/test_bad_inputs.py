"""Each bad input: its documented exit code, a message naming the cause with a hint, nothing left."""

from __future__ import annotations

import functools
import socket
from pathlib import Path
from typing import Callable

import pytest

from support import Project

pytestmark = pytest.mark.slow


@pytest.fixture
def new_project(make_project, runtime):
    """Projects for the runtime under test."""
    return functools.partial(make_project, runtime=runtime)


def _assert_clean_failure(project: Project, result, code: int, *fragments: str) -> None:
    assert result.returncode == code, result
    assert "error:" in result.stderr and "hint:" in result.stderr, result
    for fragment in fragments:
        assert fragment in result.stderr, result
    assert "Traceback" not in result.output, result
    assert project.leftovers() == []
    assert project.state() is None


def _one_plugin(wasm: str = "plugin.wasm", config: dict | None = None) -> dict:
    return {"gateway": {"port": 0}, "plugins": [{"name": "p", "wasm": wasm, "config": config or {}}]}


def test_missing_wasm(new_project) -> None:
    project = new_project(_one_plugin("nope.wasm"))
    result = project.hlocal("up")
    _assert_clean_failure(project, result, 4, "wasm file not found", "nope.wasm")


def test_text_file_named_wasm(new_project, tmp_path: Path) -> None:
    text = tmp_path / "plugin.wasm"
    text.write_text("hello world, I am not a module\n")
    project = new_project(_one_plugin(), files={"plugin.wasm": text})
    result = project.hlocal("up")
    _assert_clean_failure(project, result, 4, "not a WebAssembly module", "text file")


def test_truncated_module(new_project, plugin_wasm, tmp_path: Path) -> None:
    data = plugin_wasm("logger").read_bytes()
    cut = tmp_path / "plugin.wasm"
    cut.write_bytes(data[: len(data) // 2])
    project = new_project(_one_plugin(), files={"plugin.wasm": cut})
    result = project.hlocal("up")
    _assert_clean_failure(project, result, 4, "truncated")


def test_invalid_yaml(new_project) -> None:
    project = new_project({})
    (project.path / "hlocal.yaml").write_text("name: x\nplugins:\n  - name: p\n   wasm: a.wasm\n")
    result = project.hlocal("up")
    assert result.returncode == 2, result
    assert "invalid YAML" in result.stderr and "line 4" in result.stderr
    assert project.leftovers() == []


def test_unknown_key(new_project, plugin_wasm) -> None:
    project = new_project({"gateway": {"port": 0}, "plugins": [{"name": "p", "wasm": "p.wasm", "confg": {}}]},
                           files={"p.wasm": plugin_wasm("logger")})
    result = project.hlocal("up")
    assert result.returncode == 2, result
    assert "plugins[0].confg: unknown key" in result.stderr
    assert "did you mean 'config'" in result.stderr
    assert project.leftovers() == []


def test_plugin_rejects_its_config(new_project, plugin_wasm) -> None:
    project = new_project(_one_plugin(config={"reject": True}), files={"plugin.wasm": plugin_wasm("headers")})
    result = project.hlocal("up")
    _assert_clean_failure(project, result, 4, "plugin 'p' rejected its configuration",
                          'headers: invalid configuration: "reject" is true')


def test_higress_only_host_function(new_project, plugin_wasm) -> None:
    project = new_project(_one_plugin(), files={"plugin.wasm": plugin_wasm("badimport")})
    result = project.hlocal("up")
    _assert_clean_failure(project, result, 4, "proxy_redis_init", "Higress")
    assert "--runtime docker" in result.stderr
    # The same verdict before anything starts: `check` says so too.
    check = project.hlocal("check")
    assert check.returncode == 4 and "proxy_redis_init" in check.stdout


@pytest.mark.parametrize("which", ["port", "admin_port"])
def test_port_already_taken(new_project, plugin_wasm, which: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        config = _one_plugin()
        config["gateway"] = {"port": 0, which: taken}
        project = new_project(config, files={"plugin.wasm": plugin_wasm("logger")})
        result = project.hlocal("up")
        _assert_clean_failure(project, result, 3, f"port {taken}", "in use", f"gateway.{which}")
        assert "pid" in result.stderr  # names the holder (this test process)


def test_flavor_higress_needs_docker(make_project, plugin_wasm) -> None:
    config = _one_plugin()
    config["gateway"]["flavor"] = "higress"
    project = make_project(config, files={"plugin.wasm": plugin_wasm("logger")})
    result = project.hlocal("up", "--runtime", "native")
    assert result.returncode == 2 and "needs the docker runtime" in result.stderr, result
    assert project.leftovers() == []
