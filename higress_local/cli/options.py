"""Options every project command shares, accepted after the subcommand as well as before it.

`hlocal -f DIR probe` and `hlocal probe -f DIR` mean the same (Compose takes -f before the
subcommand only; users type it after too). Each option writes into ctx.obj, which the group
created and every subcommand context shares, so commands read one place whichever position was used.
"""

from __future__ import annotations

from typing import Any, Callable

import click

from .group import CliState
from ..config.project import load_project
from ..settings import RUNTIMES as RUNTIME_CHOICES


def _store(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value is not None:
            setattr(ctx.ensure_object(CliState), key, value)
        return value

    return callback


def project_options(*, name: bool = True, port: bool = False, short_file: bool = True):
    """-f/--file (just --file where -f means something else, as `logs -f` = follow), --name, --port."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if port:
            func = click.option("--port", type=int, default=None, expose_value=False, callback=_store("port"),
                                help="Gateway port instead of gateway.port (0: a free one).")(func)
        if name:
            func = click.option("--name", default=None, expose_value=False, callback=_store("name"),
                                metavar="NAME", help="Stack name instead of `name:` (several stacks of one project).")(func)
        flags = ("-f", "--file") if short_file else ("--file",)
        return click.option(*flags, "config_file", type=click.Path(), default=None, expose_value=False,
                            callback=_store("config_file"),
                            help="hlocal.yaml or its folder (default: the nearest one from the current folder up).")(func)

    return decorate


def runtime_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--runtime", type=click.Choice(RUNTIME_CHOICES), default=None,
        help="Override `runtime:` from hlocal.yaml (a started stack keeps the runtime it was started with).",
    )(func)


def json_option(help: str = "Machine-readable output.") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--json, passed as `as_json`: a command's report as JSON instead of text."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def project_from(ctx: click.Context):
    """The project the command's options (wherever given) point at, with --name/--port applied."""
    obj = ctx.ensure_object(CliState)
    return load_project(obj.config_file, name=obj.name, port=obj.port)
