"""The `hlocal` group's table (cli/group.py): each command loads when it runs, and the table says what it is."""

from __future__ import annotations

import inspect
import subprocess
import sys

import click
import click.testing
import pytest

from higress_local.cli.group import COMMANDS, command_help, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_entry_loads_its_command_with_the_help_the_table_shows(name):
    command = main.get_command(click.Context(main), name)
    assert command is not None and command.name == name
    # what --help lists, read from the source without importing, is the command's own docstring
    assert inspect.cleandoc(command.help) == command_help(name)


def test_help_and_completion_list_every_command_without_importing_one():
    code = ("import sys; from higress_local.cli.group import main\n"
            "try: main(['--help'], prog_name='hlocal')\n"
            "except SystemExit: pass\n"
            "loaded = [m for m in ('higress_local.cli.main', 'higress_local.cli.project', 'higress_local.stack',\n"
            "          'higress_local.runtime', 'higress_local.config.project') if m in sys.modules]\n"
            "print('loaded:', loaded)")
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert shown.rstrip().endswith("loaded: []"), shown
    for name in COMMANDS:
        assert f"\n  {name} " in shown and command_help(name)[:20] in shown.replace("\n", " ")


def test_completion_offers_the_commands_from_the_table():
    context = main.make_context("hlocal", [], resilient_parsing=True)
    offered = main.shell_complete(context, "lo")
    assert [(item.value, item.help) for item in offered] == [("logs", main.get_command(context, "logs").get_short_help_str())]


def test_an_unknown_command_is_a_usage_error():
    result = click.testing.CliRunner().invoke(main, ["nope"])
    assert result.exit_code == 2 and "No such command 'nope'" in result.output
