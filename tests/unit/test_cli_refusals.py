"""Inputs `hlocal` refuses before it starts anything: the exit code, one error and one hint line, no
traceback, no state and the user's files untouched. In process (CliRunner): no Envoy, mock or docker
runs for these, so they need none (tests/integration keeps what needs real processes)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from higress_local.cli.group import main

# The 8-byte header of an empty WebAssembly module: a plugin file that exists and is module-sized.
EMPTY_MODULE = b"\0asm\x01\0\0\0"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project folder, also the working directory (as `hlocal` is run by a user)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write(path: Path, config: dict[str, Any]) -> None:
    (path / "hlocal.yaml").write_text(yaml.safe_dump({"name": "refused", **config}))


def _one_plugin(wasm: str = "plugin.wasm") -> dict[str, Any]:
    return {"runtime": "native", "gateway": {"port": 0}, "plugins": [{"name": "p", "wasm": wasm, "config": {}}]}


def _tree(path: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry of the project outside .hlocal/, links not followed: what a refusal must not touch."""
    found = {}
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if Path(root, d) != path / ".hlocal"]
        for name in dirs + files:
            info = os.lstat(Path(root, name))
            found[os.path.relpath(Path(root, name), path)] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return found


def _refused(path: Path, args: list[str], code: int, *fragments: str) -> Result:
    """Run `hlocal -f PATH ARGS` and check the whole contract of a refused input."""
    before = _tree(path)
    result = CliRunner().invoke(main, ["-f", str(path), *args])
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len([line for line in lines if line.startswith("error:")]) == 1, result.output
    assert len([line for line in lines if line.startswith("hint:")]) == 1, result.output
    for fragment in fragments:
        assert fragment in result.stderr, result.output
    assert "Traceback" not in result.output
    assert not (path / ".hlocal" / "refused" / "state.json").exists()
    assert _tree(path) == before
    return result


def test_invalid_yaml(project: Path) -> None:
    (project / "hlocal.yaml").write_text("name: x\nplugins:\n  - name: p\n   wasm: a.wasm\n")
    _refused(project, ["up"], 2, "invalid YAML", "line 4")


def test_unknown_key(project: Path) -> None:
    (project / "p.wasm").write_bytes(EMPTY_MODULE)
    _write(project, {"gateway": {"port": 0}, "plugins": [{"name": "p", "wasm": "p.wasm", "confg": {}}]})
    _refused(project, ["up"], 2, "plugins[0].confg: unknown key", "did you mean 'config'")


def test_flavor_higress_needs_docker(project: Path) -> None:
    (project / "plugin.wasm").write_bytes(EMPTY_MODULE)
    config = _one_plugin()
    config["gateway"]["flavor"] = "higress"
    _write(project, config)
    _refused(project, ["up", "--runtime", "native"], 2, "needs the docker runtime")


# -- bounded input (issue 10) -------------------------------------------------------------------------


def _billion_laughs() -> str:
    """The classic, inside a plugin's free-form config (where nothing else stops it): 9^10 values."""
    lines = ["runtime: native", "gateway: {port: 0}", "plugins:", "  - name: p", "    wasm: p.wasm", "    config:",
             '      l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"      l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", ["check", "up"])  # `check` used to pass, and `up` then exhausted memory
def test_yaml_alias_bomb_is_refused(project: Path, command: str) -> None:
    (project / "p.wasm").write_bytes(EMPTY_MODULE)
    (project / "hlocal.yaml").write_text(_billion_laughs())
    _refused(project, [command], 2, "hlocal.yaml: line 13: aliases expand the document past 1,000,000 values",
             "alias (*name)")


@pytest.mark.parametrize("nesting", ["[" * 20000 + "]" * 20000, "\n      " + "- " * 20000 + "x"], ids=["flow", "block"])
def test_yaml_twenty_thousand_levels_deep_is_refused(project: Path, nesting: str) -> None:
    (project / "hlocal.yaml").write_text(f"runtime: native\nplugins:\n- name: p\n  wasm: p.wasm\n  config:\n"
                                         f"    x: {nesting}\n")
    _refused(project, ["up"], 2, "hlocal.yaml: line ", "nested deeper than 100 levels")


def test_hlocal_yaml_that_is_a_fifo_is_refused_not_waited_on(project: Path) -> None:
    config = project / "hlocal.yaml"
    os.mkfifo(config)
    _refused(project, ["up"], 2, f"config file {config} is a FIFO")


def test_hlocal_yaml_over_the_size_cap_is_refused_unread(project: Path) -> None:
    _write(project, {"gateway": {"port": 0}})
    with (project / "hlocal.yaml").open("r+b") as out:
        out.truncate(16 * 1024 * 1024 + 1)  # sparse beyond the text: reading it would take 16 MiB
    _refused(project, ["check"], 2, "is 16 MiB, over the 16 MiB limit")


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
def test_wasm_that_is_not_a_regular_module_sized_file_is_refused(project: Path, make, problem: str) -> None:
    _write(project, _one_plugin("m.wasm"))
    make(project / "m.wasm")
    _refused(project, ["up"], 4, "hlocal.yaml: plugins[0].wasm: wasm file", problem,
             "hint: point plugins[0].wasm at the built .wasm file (a regular file of at most 256 MiB)")


@pytest.mark.parametrize(
    ("regex", "problem"),
    [("/(a)\\1", "RE2: invalid escape sequence: \\1"), ("/(?=x)", "RE2: invalid perl operator: (?="),
     ("/[a-z]{1,50}", "RE2 program size 104 > 100")],
    ids=["backreference", "lookahead", "program-size"],
)
@pytest.mark.parametrize("command", ["check", "up"])  # it used to pass `check` and fail `up` with exit 3
def test_route_regex_envoy_refuses_is_a_config_error(project: Path, command: str, regex: str, problem: str) -> None:
    (project / "plugin.wasm").write_bytes(EMPTY_MODULE)
    _write(project, {**_one_plugin(), "routes": [{"name": "ok", "prefix": "/ok"}, {"name": "r", "regex": regex}]})
    _refused(project, [command], 2, "hlocal.yaml: routes[1].regex:", problem)


def test_probe_header_with_crlf_is_a_config_error(project: Path) -> None:
    probe = {"name": "p", "request": {"path": "/", "headers": {"x-a": "1\r\nx-injected: 2"}}, "expect": {}}
    _write(project, {"runtime": "native", "gateway": {"port": 0}, "probes": [probe]})
    _refused(project, ["probe"], 2, "hlocal.yaml: probes[0].request.headers.x-a: the value of header 'x-a' contains CR")


@pytest.mark.parametrize(("mock", "expected"), [
    ({"replicas": 0}, "services[0].mock.replicas: 0 is out of range 1..16"),
    ({"replicas": 2, "metrics": ["x 1\n"]}, "services[0].mock.metrics: lists 1 metrics for 2 replicas"),
], ids=["zero", "metrics-per-replica"])
def test_a_bad_replicas_value_fails_up_naming_the_key(project: Path, mock: dict, expected: str) -> None:
    _write(project, {"runtime": "native", "gateway": {"port": 0},
                     "services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80, "mock": mock}]})
    _refused(project, ["up"], 2, expected)
