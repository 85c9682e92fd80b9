"""The `hlocal` group: one table of its commands, each imported only when it runs.

Click's documented "Lazily Loading Subcommands" (`LazyGroup`): the group knows each command by its
import path, so `hlocal --help` and `hlocal up` import only what they show or run, and the command
modules import at the top. The table also holds each command's short help, so `--help` and shell
completion list the commands without importing them (tests/unit/test_cli_group.py keeps it equal to
the commands' own docstrings).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
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


# name: (module:attribute, short help, as the command's docstring starts)
COMMANDS = {
    "build": ("higress_local.cli.main:build", "Compile plugins to wasm and inspect the result."),
    "check": ("higress_local.cli.project:check", "Inspect each plugin module and say whether the gateway can run it."),
    "config": ("higress_local.cli.project:config_command",
               "Print the configuration as resolved: ${VAR}s expanded, defaults filled in, overrides applied."),
    "down": ("higress_local.cli.main:down", "Stop everything of this stack (safe to run twice)."),
    "export": ("higress_local.cli.project:export",
               "Write the plugins and services as Higress resources (WasmPlugin, McpBridge, ...)."),
    "init": ("higress_local.cli.project:init_command",
             "Write a commented hlocal.yaml and tests/test_smoke.py for the plugin in this directory."),
    "inspect": ("higress_local.cli.inspector:inspect_command",
                "List the requests the gateway handled, or show one: the four views and what the plugins changed."),
    "logs": ("higress_local.cli.main:logs",
             "Print the stack's logs merged in time order (`access`: the gateway's access log)."),
    "ls": ("higress_local.cli.project:ls_command",
           "List every hlocal stack running on this machine (any folder, both runtimes)."),
    "mcp": ("higress_local.cli.mcp:mcp_group",
            "List and call the tools of an MCP server plugin on the running stack (Streamable HTTP)."),
    "new": ("higress_local.cli.project:new_command",
            "Create a wasm-go SDK plugin project: go.mod, main.go, hlocal.yaml, a smoke test, README."),
    "probe": ("higress_local.cli.main:probe", "Run the probes from hlocal.yaml against the running stack."),
    "push": ("higress_local.cli.push:push_command",
             "Push a plugin's module as the OCI image Higress loads; print its digest."),
    "reload": ("higress_local.cli.main:reload",
               "Swap new builds, plugin configs, routes and stubs into the running gateway."),
    "render": ("higress_local.cli.project:render", "Write what `up` would run, to run it by hand (eject)."),
    "request": ("higress_local.cli.main:request",
                "Send one request; show the response and what the backend received."),
    "status": ("higress_local.cli.main:status", "Show each component: state, pid, ports, plugin sha, uptime."),
    "test": ("higress_local.cli.main:smoke_test",
             "Start the stack, run the smoke tests with pytest (default: tests/), stop it; exit with pytest's status."),
    "ui": ("higress_local.cli.inspector:ui_command",
           "Serve the request inspector as a local web page (live list, the four views, replay)."),
    "up": ("higress_local.cli.main:up", "Start the gateway, plugins and mock backend; wait until ready."),
    "watch": ("higress_local.cli.main:watch",
              "Rebuild and reload the running stack whenever plugin sources or hlocal.yaml change."),
}


def _short_help(text: str, limit: int = 45) -> str:
    """`text` cut to `limit` the way Click cuts a command's docstring (Command.get_short_help_str)."""
    return click.Command(None, help=text).get_short_help_str(limit)


class LazyGroup(click.Group):
    """A group whose commands are import paths, imported at first use (Click: "Lazily Loading Subcommands")."""

    def __init__(self, *args: Any, lazy_commands: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy_commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = self.lazy_commands[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self.lazy_commands[cmd_name][0]} is not a Click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """As click.Group's, from the table: listing the commands imports none of them."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _short_help(self.lazy_commands[name][1], limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Command names (as click.Group's, from the table), then the group's own options."""
        items = [CompletionItem(name, help=_short_help(short))
                 for name, (_, short) in sorted(self.lazy_commands.items()) if name.startswith(incomplete)]
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
