"""The entry point's side of the reload agent: which command lines it sends, where it looks, the wire."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from higress_local.agent import wire as agentwire
from higress_local.config import project as config
from higress_local import entry


@pytest.mark.parametrize("argv, expected", [
    (["reload"], {"file": None, "name": None, "plugins": [], "build": True, "timeout": 120.0}),
    (["-f", "proj", "reload"], {"file": "proj"}),
    (["--file=proj", "reload", "--file", "other"], {"file": "other"}),  # the last one wins, as in the CLI
    (["reload", "-f", "p", "--name", "n2", "--timeout", "7.5", "a", "b"],
     {"file": "p", "name": "n2", "timeout": 7.5, "plugins": ["a", "b"]}),
    (["reload", "--no-build", "--", "-odd-name"], {"build": False, "plugins": ["-odd-name"]}),
    (["reload", "--timeout=3"], {"timeout": 3.0}),
])
def test_the_reload_command_lines_the_agent_serves(argv: list[str], expected: dict) -> None:
    request = entry.parse_reload(argv)
    assert request is not None
    assert {k: request[k] for k in expected} == expected


@pytest.mark.parametrize("argv", [
    [], ["up"], ["status"], ["--debug", "reload"], ["reload", "--restart"], ["reload", "--help"],
    ["reload", "-h"], ["reload", "--timeout", "soon"], ["reload", "--timeout"], ["-f"], ["reload", "--watch"],
    ["reload", "-fproj"], ["--version"],
])
def test_every_other_command_line_goes_to_the_cli(argv: list[str]) -> None:
    assert entry.parse_reload(argv) is None


def test_the_config_file_names_are_the_cli_s() -> None:
    assert entry.CONFIG_NAMES == config.CONFIG_NAMES


def test_the_config_file_found_is_the_one_the_cli_finds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "proj"
    (project / "tests" / "deep").mkdir(parents=True)
    (project / "hlocal.yml").write_text("name: x\n")
    monkeypatch.chdir(project / "tests" / "deep")
    here = str(project / "tests" / "deep")
    assert entry.find_config(None, here) == str(config.find_config(None, Path(here)))
    assert entry.find_config(str(project), here) == str(config.find_config(str(project), Path(here)))
    assert entry.find_config("../../hlocal.yml", here) == str(config.find_config("../../hlocal.yml", Path(here)))
    assert entry.find_config("missing.yaml", here) is None  # the CLI then reports it
    assert entry.find_config(None, str(tmp_path)) is None


def _stack_with_socket(root: Path, name: str) -> Path:
    run = root / ".hlocal" / name / "run"
    run.mkdir(parents=True)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(run / "agent.sock"))
    listener.close()
    return run / "agent.sock"


def test_agent_sockets_are_found_only_where_no_link_leads(tmp_path: Path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: a\n")
    good = _stack_with_socket(tmp_path, "a")
    elsewhere = _stack_with_socket(tmp_path / "other", "b")
    os.symlink(elsewhere.parent.parent, tmp_path / ".hlocal" / "linked")  # a stack folder that is a link
    (tmp_path / ".hlocal" / "c" / "run").mkdir(parents=True)
    (tmp_path / ".hlocal" / "c" / "run" / "agent.sock").write_text("not a socket")
    config_file = str(tmp_path / "hlocal.yaml")
    assert entry.agent_sockets(config_file, None) == [str(good)]
    assert entry.agent_sockets(config_file, "linked") == []
    assert entry.agent_sockets(config_file, "a") == [str(good)]


def test_a_message_goes_through_the_wire_unchanged() -> None:
    left, right = socket.socketpair()
    with left, right:
        message = {"op": "reload", "env": {"A": "b" * 70_000}, "plugins": ["x"], "timeout": 1.5, "build": False}
        agentwire.send(left, message)
        assert agentwire.receive(right) == message


def test_the_wire_refuses_what_is_not_a_message() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall((agentwire.MAX_MESSAGE + 1).to_bytes(4, "big"))
        with pytest.raises(agentwire.WireError, match="over the limit"):
            agentwire.receive(right)
    left, right = socket.socketpair()
    with left, right:
        left.sendall((3).to_bytes(4, "big") + b"\xff\xff\xff")
        with pytest.raises(agentwire.WireError, match="not a message"):
            agentwire.receive(right)
    left, right = socket.socketpair()
    with left, right:
        left.sendall((5).to_bytes(4, "big") + b"ab")
        left.close()
        with pytest.raises(agentwire.WireError, match="closed mid-message"):
            agentwire.receive(right)


def test_a_long_socket_path_is_reached_through_its_folder(tmp_path: Path) -> None:
    folder = tmp_path / ("d" * 60) / ("e" * 60)
    folder.mkdir(parents=True)
    path = str(folder / "agent.sock")
    assert len(path) > 108
    listener = socket.socket(socket.AF_UNIX)
    with listener:
        agentwire.bind(listener, path)
        listener.listen(1)
        client = agentwire.connect(path, 2.0)
        conn, _ = listener.accept()
        with conn:
            agentwire.send(client, {"hello": 1})
            assert agentwire.receive(conn) == {"hello": 1}
            client.close()
    assert Path(path).exists()


def test_the_entry_point_imports_nothing_heavy_before_it_knows() -> None:
    """What a reload served by the agent costs in imports: hlocal's wire and built-in modules, nothing else."""
    code = ("import sys; before = set(sys.modules); import higress_local.entry as e; "
            "e.reload_through_agent(['reload']); print(' '.join(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd="/", env={**os.environ, "HLOCAL_NO_AGENT": ""})
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert {"higress_local.entry", "higress_local.agent.wire"} <= loaded
    light = ("higress_local.entry", "higress_local.agent", "higress_local.agent.wire")  # agent/__init__: a docstring
    heavy = {m for m in loaded if m.split(".")[0] in ("click", "yaml", "json", "socket", "subprocess", "pathlib",
                                                       "logging", "re")
             or (m.startswith("higress_local.") and m not in light)}
    assert not heavy, sorted(loaded)


def test_hlocal_no_agent_turns_it_off() -> None:
    assert agentwire.disabled({"HLOCAL_NO_AGENT": "1"})
    assert not agentwire.disabled({"HLOCAL_NO_AGENT": "0"})
    assert not agentwire.disabled({})
