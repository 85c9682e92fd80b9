"""The `hlocal` commands that set up and inspect a project rather than run its stack: check, render,
export, init, new, ls, config. cli/main.py adds them to the `hlocal` group."""

from __future__ import annotations

import click

from .options import CliState, json_option, project_from, project_options, runtime_option as _runtime_option
from ..errors import PluginError
from .configview import resolved_config
from .report import print_check, print_config, print_stacks
from ..errors import ConfigError
from ..project.export import export_higress
from ..project.ls import running_stacks
from ..project.newplugin import new_project
from ..project.render_stack import render_stack
from ..project.scaffold import init_project
from ..stack import choose_runtime_name, resolve_flavor
from ..wasm.plugins import check_project


@click.command()
@project_options(name=False)
@_runtime_option
@json_option()
@click.pass_context
def check(ctx: click.Context, runtime: str | None, as_json: bool) -> None:
    """Inspect each plugin module and say whether the gateway can run it."""
    project = project_from(ctx)
    flavor = resolve_flavor(project, runtime)
    report = check_project(project, flavor)
    print_check(report, as_json=as_json)
    if not report.runnable:
        refused = [p.plugin.name for p in report.plugins if not p.compat.runnable]
        raise PluginError(f"the {flavor} gateway cannot run: {', '.join(refused)}",
                          "see the problems listed above for each plugin")


@click.command()
@project_options(port=True)
@_runtime_option
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Directory to write into (default: .hlocal/<name>/ when the stack is not running).")
@click.pass_context
def render(ctx: click.Context, runtime: str | None, out: str | None) -> None:
    """Write what `up` would run, to run it by hand (eject)."""
    project = project_from(ctx)
    rendered = render_stack(project, runtime, out)
    click.echo(f"rendered the {rendered.runtime} stack of {project.name} into {rendered.directory}")
    for line in rendered.instructions:
        click.echo(f"  {line}")


@click.command()
@project_options(name=False)
@click.argument("target", type=click.Choice(["higress"]))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write one file per resource here (default: print multi-document YAML).")
@click.option("--namespace", default="higress-system", show_default=True, help="Namespace of the resources.")
@click.option("--url", "urls", multiple=True, metavar="PLUGIN=URL",
              help="Where the cluster pulls a plugin from, e.g. headers=oci://registry/headers:1.0 (repeatable).")
@click.option("--default-url", default=None, metavar="URL", help="URL for plugins without --url; {name} is replaced.")
@click.pass_context
def export(ctx: click.Context, target: str, out: str | None, namespace: str, urls: tuple[str, ...],
           default_url: str | None) -> None:
    """Write the plugins and services as Higress resources (WasmPlugin, McpBridge, ...)."""
    from pathlib import Path

    project = project_from(ctx)
    mapping = {}
    for item in urls:
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--url {item!r}: expected PLUGIN=URL", "for example --url headers=oci://reg/headers:1.0")
        mapping[name] = url
    result = export_higress(project, namespace=namespace, urls=mapping, default_url=default_url)
    if out is None:
        click.echo(result.to_yaml(), nl=False)
    else:
        for path in result.write(Path(out)):
            click.echo(f"wrote {path}", err=True)
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


@click.command("init")
@project_options(name=False)
@click.option("--wasm", default=None, help="The plugin's module, relative to the directory (default: main.wasm).")
@click.option("--force", is_flag=True, help="Overwrite hlocal.yaml and tests/test_smoke.py if they exist.")
@click.pass_context
def init_command(ctx: click.Context, wasm: str | None, force: bool) -> None:
    """Write a commented hlocal.yaml and tests/test_smoke.py for the plugin in this directory."""
    from pathlib import Path

    given = ctx.ensure_object(CliState).config_file
    directory = (Path(given) if Path(given).is_dir() else Path(given).parent) if given else Path.cwd()
    result = init_project(directory, wasm=wasm, force=force)
    for path in result.written:
        click.echo(f"wrote {path}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo("next: hlocal test   (or: hlocal up, then pytest)")


@click.command("new")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Create the project folder NAME inside this directory.")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
@click.option("--template", type=click.Choice(["plugin", "mcp"]), default="plugin", show_default=True,
              help="plugin: a request-header plugin; mcp: an MCP server on wasm-go's pkg/mcp with one tool.")
def new_command(name: str, parent: str, force: bool, template: str) -> None:
    """Create a wasm-go SDK plugin project: go.mod, main.go, hlocal.yaml, a smoke test, README."""
    from pathlib import Path

    result = new_project(Path(parent), name, force=force, template=template)
    for path in result.written:
        click.echo(f"wrote {path}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for line in result.next_steps:
        click.echo(line)


@click.command("ls")
@json_option()
def ls_command(as_json: bool) -> None:
    """List every hlocal stack running on this machine (any folder, both runtimes)."""
    print_stacks(running_stacks(), as_json=as_json)


@click.command("config")
@project_options(port=True)
@_runtime_option
@json_option("JSON instead of YAML.")
@click.pass_context
def config_command(ctx: click.Context, runtime: str | None, as_json: bool) -> None:
    """Print the configuration as resolved: ${VAR}s expanded, defaults filled in, overrides applied."""
    project = project_from(ctx)
    name, why = choose_runtime_name(project, runtime)
    print_config(resolved_config(project, name, why), as_json=as_json)

