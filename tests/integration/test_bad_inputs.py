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


# -- bounded input (issue 10): each refused with its exit code, one error and one hint line, --------
# -- no traceback, nothing started, nothing touched outside .hlocal/<name>/ --------------------------


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


def _billion_laughs() -> str:
    """The classic, inside a plugin's free-form config (where nothing else stops it): 9^10 values."""
    lines = ["runtime: native", "gateway: {port: 0}", "plugins:", "  - name: p", "    wasm: p.wasm", "    config:",
             '      l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_by_check_and_up(make_project, plugin_wasm) -> None:
    project = make_project({}, files={"p.wasm": plugin_wasm("logger")}, runtime="native")
    (project.path / "hlocal.yaml").write_text(_billion_laughs())
    for command in ("check", "up"):  # `check` first: it used to pass, and `up` then exhausted memory
        _refused(project, lambda: project.hlocal(command, timeout=60), 2,
                 "hlocal.yaml: line 13: aliases expand the document past 1,000,000 values", "alias (*name)")


@pytest.mark.parametrize("nesting", ["[" * 20000 + "]" * 20000, "\n      " + "- " * 20000 + "x"], ids=["flow", "block"])
def test_yaml_twenty_thousand_levels_deep_is_refused(make_project, nesting: str) -> None:
    project = make_project({}, runtime="native")
    (project.path / "hlocal.yaml").write_text(f"runtime: native\nplugins:\n- name: p\n  wasm: p.wasm\n  config:\n"
                                              f"    x: {nesting}\n")
    _refused(project, lambda: project.hlocal("up", timeout=60), 2, "hlocal.yaml: line ",
             "nested deeper than 100 levels")


def test_hlocal_yaml_that_is_a_fifo_is_refused_not_waited_on(make_project) -> None:
    project = make_project({"gateway": {"port": 0}}, runtime="native")
    config = project.path / "hlocal.yaml"
    kept = config.read_text()
    config.unlink()
    os.mkfifo(config)
    try:
        _refused(project, lambda: project.hlocal("up", timeout=60), 2, f"config file {config} is a FIFO")
    finally:
        config.unlink()
        config.write_text(kept)  # for the fixture's `hlocal down`


def test_hlocal_yaml_over_the_size_cap_is_refused_unread(make_project) -> None:
    project = make_project({"gateway": {"port": 0}}, runtime="native")
    with (project.path / "hlocal.yaml").open("r+b") as out:
        out.truncate(16 * 1024 * 1024 + 1)  # sparse beyond the text: reading it would take 16 MiB
    _refused(project, lambda: project.hlocal("check", timeout=60), 2, "is 16 MiB, over the 16 MiB limit")
    project.write()


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path: path.symlink_to("/dev/zero"), "is a character device, not a regular file"),
        (lambda path: os.mkfifo(path), "is a FIFO (named pipe), not a regular file"),
        (lambda path: path.symlink_to(path), "is a symlink loop"),
        (lambda path: path.open("wb").truncate(256 * 1024 * 1024 + 1), "is 256 MiB, over the 256 MiB limit"),
    ],
    ids=["dev-zero", "fifo", "symlink-loop", "oversize-sparse"],
)
def test_wasm_that_is_not_a_regular_module_sized_file_is_refused(make_project, make, problem: str) -> None:
    project = make_project(_one_plugin("m.wasm"), runtime="native")
    make(project.path / "m.wasm")
    _refused(project, lambda: project.hlocal("up", timeout=60), 4, "hlocal.yaml: plugins[0].wasm: wasm file",
             problem, "hint: point plugins[0].wasm at the built .wasm file (a regular file of at most 256 MiB)")


@pytest.mark.parametrize(
    ("regex", "problem"),
    [("/(a)\\1", "RE2: invalid escape sequence: \\1"), ("/(?=x)", "RE2: invalid perl operator: (?="),
     ("/[a-z]{1,50}", "RE2 program size 104 > 100")],
    ids=["backreference", "lookahead", "program-size"],
)
def test_route_regex_envoy_refuses_is_a_config_error(make_project, plugin_wasm, regex: str, problem: str) -> None:
    config = {**_one_plugin(), "routes": [{"name": "ok", "prefix": "/ok"}, {"name": "r", "regex": regex}]}
    project = make_project(config, files={"plugin.wasm": plugin_wasm("logger")}, runtime="native")
    for command in ("check", "up"):  # it used to pass `check` and fail `up` with exit 3 "plugin filter update"
        _refused(project, lambda: project.hlocal(command, timeout=60), 2, "hlocal.yaml: routes[1].regex:", problem)


def test_probe_header_with_crlf_is_a_config_error(make_project) -> None:
    probe = {"name": "p", "request": {"path": "/", "headers": {"x-a": "1\r\nx-injected: 2"}}, "expect": {}}
    project = make_project({"gateway": {"port": 0}, "probes": [probe]}, runtime="native")
    _refused(project, lambda: project.hlocal("probe", timeout=60), 2,
             "hlocal.yaml: probes[0].request.headers.x-a: the value of header 'x-a' contains CR")


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
