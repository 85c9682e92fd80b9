"""The `hlocal` group: one table of its commands, each imported only when it runs.

Click's documented "Lazily Loading Subcommands" (`LazyGroup`): the group knows each command by its
import path, so `hlocal --help` and `hlocal up` import only what they show or run, and the command
modules import at the top. `--help` and shell completion show each command's own docstring, found in
its module's source without importing it (tests/unit/test_cli_group.py: equal to what Click loads).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from click.shell_completion import CompletionItem

from ..agent.wire import print_outcome
from ..errors import HlocalError, Stopped, outcome_of
from ..system.wait import install_interrupt_flag


@dataclass
class CliState:
    """ctx.obj: what the group's and the shared options set, read by every command."""

    config_file: str | None = None
    debug: bool = False
    name: str | None = None
    port: int | None = None


# Each command module and the commands it holds (`name=function` where the function is named otherwise).
_MODULES = {
    "higress_local.cli.main": "build down logs probe reload request status test=smoke_test up watch",
    "higress_local.cli.project": "check config=config_command export init=init_command ls=ls_command "
                                 "new=new_command render",
    "higress_local.cli.inspector": "inspect=inspect_command ui=ui_command",
    "higress_local.cli.mcp": "mcp=mcp_group",
    "higress_local.cli.push": "push=push_command",
}
# name: "module:function"
COMMANDS = {name: f"{module}:{function or name}" for module, names in _MODULES.items()
            for name, _, function in (word.partition("=") for word in names.split())}


# A command function's docstring in its module's source (house style: `"""` right under the `def`).
_DOCSTRING = r'^def {}\(.*?:\n    """(.*?)"""'


@functools.cache
def _source(module: str) -> str:
    return Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8")


def command_help(name: str) -> str:
    """The command's own docstring, as Click shows it (the one source of each command's help)."""
    module, _, function = COMMANDS[name].partition(":")
    found = re.search(_DOCSTRING.format(function), _source(module), re.MULTILINE | re.DOTALL)
    return inspect.cleandoc(found.group(1)) if found else ""


def _short_help(text: str, limit: int = 45) -> str:
    """`text` cut to `limit` the way Click cuts a command's docstring (Command.get_short_help_str)."""
    return click.Command(None, help=text).get_short_help_str(limit)


class LazyGroup(click.Group):
    """A group whose commands are import paths, imported at first use (Click: "Lazily Loading Subcommands")."""

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy_commands[cmd_name].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name]} is not a Click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click.Group's, from the table: listing the commands imports none of them."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _short_help(command_help(name), limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names (as click.Group's, from the table), then the group's own options."""
        items = [CompletionItem(name, help=_short_help(command_help(name)))
                 for name in sorted(self.lazy_commands) if name.startswith(incomplete)]
        return items + click.Command.shell_complete(self, ctx, incomplete)


class HlocalGroup(LazyGroup):
    """Turns every HlocalError (and a stop by signal) into one short message and its documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (HlocalError, KeyboardInterrupt, Stopped) as exc:
            if isinstance(exc, HlocalError) and ctx.params.get("debug"):
                import traceback  # only for --debug

                traceback.print_exc()
            ctx.exit(print_outcome(outcome_of(exc)))


@click.group(cls=HlocalGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--file", "config_file", type=click.Path(dir_okay=True), default=None,
              help="hlocal.yaml or its folder (default: the nearest one from the current folder up); "
                   "also accepted after the subcommand.")
@click.option("--debug", is_flag=True, help="Verbose logs and tracebacks.")
@click.version_option(package_name="higress-local", prog_name="hlocal")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, debug: bool) -> None:
    """Run Higress wasm plugins locally behind a real gateway.

    \b
    Shell completion: eval "$(_HLOCAL_COMPLETE=bash_source hlocal)" (zsh_source, fish_source).

    \b
    Exit codes: 0 ok, 1 probe failed (or `status`: not healthy),
    2 usage or config error, 3 environment problem, 4 plugin failed
    to load or configure, 5 timed out waiting for ready,
    129/130/143 stopped by SIGHUP/SIGINT/SIGTERM.
    """
    import logging  # here, not at the top: `hlocal --help` does not need it

    install_interrupt_flag()
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s")
    ctx.obj = CliState(config_file=config_file, debug=debug)
