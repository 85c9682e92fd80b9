"""Statements of README.md that the code decides: checked against the code, so they cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import click

from higress_local.cli.main import main
from higress_local.config.project import parse_project
from higress_local.runtime import choose_runtime_name

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.MULTILINE | re.DOTALL)
    assert match, title
    return match.group(1)


def _command_paths(group: click.Group, prefix: str = "hlocal") -> list[str]:
    paths = []
    ctx = click.Context(group)  # a lazy group (cli/group.py) loads each command when asked for it
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command.hidden:
            continue
        path = f"{prefix} {name}"
        paths += _command_paths(command, path) if isinstance(command, click.Group) else [path]
    return paths


def test_every_command_is_in_the_commands_table() -> None:
    rows = [line for line in _section("Commands").splitlines() if line.startswith("| `hlocal ")]
    listed = {re.match(r"\| `(hlocal [a-z]+(?: [a-z]+)?)", row).group(1) for row in rows}
    commands = _command_paths(main)
    assert "hlocal new" in commands and "hlocal init" in commands
    missing = [c for c in commands if not any(row == c or row.startswith(f"{c} ") for row in listed)]
    assert not missing, f"commands missing from the README's Commands table: {missing}"


def test_auto_is_described_as_the_code_chooses(tmp_path: Path) -> None:
    """`auto` is native whenever every plugin runs on stock Envoy, whether or not a Docker engine answers."""
    project = parse_project({"plugins": []}, tmp_path / "hlocal.yaml")
    assert choose_runtime_name(project, None)[0] == "native"
    mentions = [line for line in README.splitlines() if re.search(r"\bauto\b", line) and "runtime" in line]
    assert mentions
    assert not [line for line in mentions if "engine answers" in line], "auto does not depend on a Docker engine"
    reference = next(line for line in mentions if line.startswith("runtime: auto"))
    assert "native unless a plugin needs the Higress image" in reference


def test_calling_other_services_says_redis_calls_work_as_the_emulation_catalogue_does() -> None:
    from higress_local.wasm.adapt.catalog import REDIS

    section = " ".join(_section("Calling other services").split())
    assert not REDIS.refused  # the native runtime emulates proxy_redis_*: the README must not say it refuses
    assert "Redis calls work on both runtimes" in section and "Redis relay" in section
    assert not re.search(r"redis[^.]*\b(refused|refuses|not supported|cannot run)", section, re.IGNORECASE)
