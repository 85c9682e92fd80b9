"""`hlocal push PLUGIN oci://REGISTRY/REPO:TAG` (registered on the `hlocal` group in cli/main.py)."""

from __future__ import annotations

import click

from .options import CliState
from ..config.project import load_project
from ..project.push import push_plugin
from ..wasm.gobuild import build_plugin, needs_build


@click.command("push")
@click.argument("plugin")
@click.argument("reference", metavar="oci://REGISTRY/REPO:TAG")
@click.option("--insecure", is_flag=True,
              help="Talk plain HTTP to the registry (automatic for a localhost / 127.0.0.1 one without TLS).")
@click.option("--docs/--no-docs", default=True, show_default=True,
              help="Also push spec.yaml, README*.md and icon.png from the plugin's folder, as Higress does.")
@click.option("--build/--no-build", "build", default=None,
              help="Build the plugin first (default: when it has a build section and its sources are newer).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds allowed per registry request.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the digest.")
@click.pass_context
def push_command(ctx: click.Context, plugin: str, reference: str, insecure: bool, docs: bool, build: bool | None,
                 timeout: float, quiet: bool) -> None:
    """Push a plugin's module as the OCI image Higress loads; print its digest.

    `hlocal export higress` then points the plugin's WasmPlugin at the pushed digest.
    Credentials: `docker login REGISTRY`, or ORAS_USER and ORAS_PASS.
    """
    project = load_project(ctx.ensure_object(CliState).config_file)
    chosen = project.plugin(plugin)
    if chosen.build is not None and build is not False and (build or needs_build(chosen)):
        done = build_plugin(chosen, echo=lambda line: click.echo(f"  | {line}", err=True))
        click.echo(f"built {chosen.name} in {done.seconds:.1f} s: {done.size:,} bytes", err=True)
    pushed = push_plugin(project, plugin, reference, insecure=insecure, docs=docs, timeout=timeout)
    if quiet:
        click.echo(pushed.digest)
        return
    click.echo(f"pushed {pushed.plugin} to {pushed.reference}")
    for layer in pushed.layers:
        click.echo(f"  {layer['title']:<16} {layer['mediaType']}  {layer['size']:,} bytes")
    click.echo(f"digest: {pushed.digest}")
    click.echo(f"url:    {pushed.url}")
    click.echo("`hlocal export higress` now uses this url for the plugin (unless --url names another)", err=True)
