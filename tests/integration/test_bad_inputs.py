"""Each bad input: its documented exit code, a message naming the cause with a hint, nothing left."""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Callable

import pytest

from support import HLOCAL, Project, Result

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


# -- bounded input (issue 10): each refused with its exit code, one error and one hint line, --------
# -- no traceback, nothing started, nothing touched outside .hlocal/<name>/ --------------------------
# -- (inputs refused before anything starts: tests/unit/test_cli_refusals.py) ------------------------


def _tree(project: Project) -> dict[str, tuple[int, int, int]]:
    """Every entry under the project outside hlocal's own .hlocal/ (the stack folder and the stack's
    lock beside it), links not followed: the user's files, which a refused input must not touch."""
    own = project.path / ".hlocal"
    found = {}
    for root, dirs, files in os.walk(project.path):
        dirs[:] = [d for d in dirs if Path(root, d) != own]
        for name in dirs + files:
            info = os.lstat(Path(root, name))
            found[os.path.relpath(Path(root, name), project.path)] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return found


def _refused(project: Project, run: Callable[[], Result], code: int, *fragments: str) -> Result:
    """Run the command and check the whole contract of a refused input."""
    before = _tree(project)
    result = run()
    assert result.returncode == code, result
    lines = result.stderr.splitlines()
    assert len([line for line in lines if line.startswith("error:")]) == 1, result
    assert len([line for line in lines if line.startswith("hint:")]) == 1, result
    for fragment in fragments:
        assert fragment in result.stderr, result
    assert "Traceback" not in result.output, result
    assert project.leftovers() == []
    assert project.state() is None
    assert _tree(project) == before
    return result


def test_privileged_port_is_a_permission_problem_not_in_use(make_project, plugin_wasm) -> None:
    """Port 80 without CAP_NET_BIND_SERVICE: as root, setpriv drops the capability for hlocal alone."""
    config = _one_plugin()
    config["gateway"] = {"port": 80}
    project = make_project(config, files={"plugin.wasm": plugin_wasm("logger")}, runtime="native")
    start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text())
    if start <= 80:
        pytest.skip(f"this kernel lets anyone bind port 80 (ip_unprivileged_port_start={start})")
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root and setpriv (util-linux) is missing: cannot drop CAP_NET_BIND_SERVICE")
        prefix = ["setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service", "--"]

    def up() -> Result:
        argv = [*prefix, *HLOCAL, "-f", str(project.path), "up"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=project.path)
        return Result(argv, done.returncode, done.stdout, done.stderr)

    result = _refused(project, up, 3, "port 80 (gateway listener, gateway.port)", "permission denied",
                      "hint: use a port of 1024 or above in hlocal.yaml, or 0 to pick a free one")
    assert "in use" not in result.stderr


def test_request_with_bad_method_path_or_header_is_refused(make_project) -> None:
    """A running stack (no plugin: Envoy starts in well under a second); each bad request exits 2."""
    project = make_project({"gateway": {"port": 0}}, runtime="native")
    started = project.hlocal("up", timeout=120)
    assert started.returncode == 0, started
    cases = [
        (["GET", "/", "-H", "x-a: 1\r\nx-injected: 2"], "the value of header 'x-a' contains CR"),
        (["GET", "/", "-H", "x-a: \u20ac"], "which HTTP/1.1 cannot carry (latin-1 only)"),
        (["GET", "/", "-H", "x a: 1"], "header name 'x a' contains a space"),
        (["GET\r\nX", "/"], "is not a valid HTTP method"),
        (["GET", "/caf\u00e9"], "request path: '/café' contains 'é' (U+00E9)"),
        (["GET", "/a b"], "request path: '/a b' contains a space"),
    ]
    for args, problem in cases:
        result = project.hlocal("request", *args, timeout=60)
        assert result.returncode == 2, result
        assert result.stderr.count("error:") == 1 and result.stderr.count("hint:") == 1, result
        assert problem in result.stderr and "Traceback" not in result.output, result
    # The stack is untouched by the refused requests.
    assert project.hlocal("request", "GET", "/fine", timeout=60).returncode == 0
