"""The `hlocal` command line: thin Click commands over the library.

Heavy modules are imported inside the commands so that `hlocal --help` stays fast.
"""

from __future__ import annotations

from typing import Any

import click

from .errors import ExitCode, HlocalError, PluginError, ProbeFailed, Stopped, Unhealthy


class HlocalGroup(click.Group):
    """Turns every HlocalError (and a stop by signal) into one short message and its documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except HlocalError as exc:
            if debug:
                import traceback

                traceback.print_exc()
            click.secho(f"error: {exc.message}", fg="red", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(int(exc.exit_code))
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(int(ExitCode.INTERRUPTED))
        except Stopped as stop:
            click.echo(f"stopped by {stop.name}", err=True)
            ctx.exit(int(stop.exit_code))


@click.group(cls=HlocalGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--file", "config_file", type=click.Path(dir_okay=True), default=None,
              help="hlocal.yaml to use (default: the one in the current directory).")
@click.option("--debug", is_flag=True, help="Verbose logs and tracebacks.")
@click.version_option(package_name="higress-local", prog_name="hlocal")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, debug: bool) -> None:
    """Run Higress wasm plugins locally behind a real gateway.

    \b
    Exit codes: 0 ok, 1 probe failed (or `status`: not healthy),
    2 usage or config error, 3 environment problem, 4 plugin failed
    to load or configure, 5 timed out waiting for ready,
    129/130/143 stopped by SIGHUP/SIGINT/SIGTERM.
    """
    import logging

    from .wait import install_interrupt_flag

    install_interrupt_flag()
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="%(name)s: %(message)s")
    ctx.obj = {"config_file": config_file, "debug": debug}


def stack_lock(*args: Any, **kwargs: Any):
    """runtime.lock.stack_lock, imported on use (the runtime package is not needed for `--help`)."""
    from .runtime.lock import stack_lock as lock

    return lock(*args, **kwargs)


def _project(ctx: click.Context):
    from .config import load_project

    return load_project(ctx.obj["config_file"])


def _runtime_option(func):
    return click.option(
        "--runtime", type=click.Choice(["auto", "native", "docker"]), default=None,
        help="Override `runtime:` from hlocal.yaml.",
    )(func)


@main.command()
@_runtime_option
@click.option("--recreate", is_flag=True, help="Stop a running stack and start it afresh.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for ready.")
@click.option("--build/--no-build", "build", default=None,
              help="Build plugins first (default: those with a build section whose sources are newer than the wasm).")
@click.option("--watch", "watch_after", is_flag=True, help="Then rebuild and reload on every change.")
@click.pass_context
def up(ctx: click.Context, runtime: str | None, recreate: bool, timeout: float, build: bool | None,
       watch_after: bool) -> None:
    """Start the gateway, plugins and mock backend; wait until ready."""
    from .runtime import select_runtime
    from .report import print_up_summary

    project = _project(ctx)
    echo = lambda m: click.echo(m, err=True)  # noqa: E731
    with stack_lock(project.state_dir, "up", wait=timeout, echo=echo):
        rt = select_runtime(project, runtime, echo=echo)
        _build_before_up(project, build)
        result = rt.up(project, recreate=recreate, timeout=timeout)
    print_up_summary(result)
    if watch_after:
        _watch(project)


def _build_before_up(project, build: bool | None) -> None:
    from .build import build_plugin, needs_build

    if build is False:
        return
    for plugin in project.plugins:
        if plugin.build is not None and (build or needs_build(plugin)):
            done = build_plugin(plugin, echo=lambda line: click.echo(f"  | {line}", err=True))
            click.echo(f"built {plugin.name} in {done.seconds:.1f} s: {done.size:,} bytes, sha256 {done.sha256[:12]}",
                       err=True)


def _watch(project) -> None:
    from .watch import watch

    try:
        watch(project.file, echo=click.echo)
    except KeyboardInterrupt:
        click.echo(f"stopped watching; the stack is still running (hlocal down to stop it)", err=True)


@main.command()
@click.argument("plugins", nargs=-1)
@click.option("--in-docker", is_flag=True, help="Build in a golang container (plugins[].build.image).")
@click.pass_context
def build(ctx: click.Context, plugins: tuple[str, ...], in_docker: bool) -> None:
    """Compile plugins to wasm and inspect the result."""
    from .build import build_plugin
    from .errors import ConfigError

    project = _project(ctx)
    chosen = [project.plugin(n) for n in plugins] or [p for p in project.plugins if p.build is not None]
    if not chosen:
        raise ConfigError(f"no plugin in {project.file.name} has a build section",
                          "add `build: {}` to a plugin for the default `go build`")
    for plugin in chosen:
        done = build_plugin(plugin, echo=lambda line: click.echo(f"  | {line}", err=True), in_docker=in_docker)
        click.echo(f"built {plugin.name} in {done.seconds:.1f} s: {done.wasm} ({done.size:,} bytes), "
                   f"sha256 {done.sha256}, ABI {done.abi or 'none'}")


@main.command()
@click.argument("plugins", nargs=-1)
@click.option("--build/--no-build", "build", default=True, help="Rebuild plugins whose sources changed (default).")
@click.option("--restart", is_flag=True, help="Restart the gateway instead of swapping in place.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for the swap.")
@click.pass_context
def reload(ctx: click.Context, plugins: tuple[str, ...], build: bool, restart: bool, timeout: float) -> None:
    """Swap new builds, plugin configs, routes and stubs into the running gateway."""
    from .reload import reload_stack

    project = _project(ctx)
    result = reload_stack(project, names=plugins, build=build, restart=restart, timeout=timeout,
                          echo=lambda line: click.echo(f"  | {line}", err=True))
    if not result.changed:
        click.echo("nothing changed")
    for line in result.lines:
        click.echo(line)


@main.command()
@click.pass_context
def watch(ctx: click.Context) -> None:
    """Rebuild and reload the running stack whenever plugin sources or hlocal.yaml change."""
    from .runtime import require_running

    project = _project(ctx)
    require_running(project)
    _watch(project)


@main.command()
@_runtime_option
@click.pass_context
def down(ctx: click.Context, runtime: str | None) -> None:
    """Stop everything of this stack (safe to run twice)."""
    from .runtime import runtime_for_state

    project = _project(ctx)
    with stack_lock(project.state_dir, "down", echo=lambda m: click.echo(m, err=True)):
        stopped = runtime_for_state(project, runtime).down(project)
    click.echo(f"stopped {', '.join(stopped)}" if stopped else f"{project.name}: nothing running")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show each component: state, pid, ports, plugin sha, uptime."""
    from .report import print_status
    from .runtime import runtime_for_state

    project = _project(ctx)
    report = runtime_for_state(project, None).status(project)
    print_status(report, as_json=as_json)
    if not report.running:  # scripts can say `hlocal status && ...`
        if not report.components:
            raise Unhealthy(f"stack {project.name!r} is not running", "start it with `hlocal up`")
        raise Unhealthy(f"stack {project.name!r} is degraded",
                        report.problem or "see the components above; `hlocal up --recreate` restarts it")


@main.command()
@click.argument("service", required=False, metavar="[gateway|backend|svc-NAME]")
@click.option("--plugin", "plugin_only", is_flag=True, help="Only the plugins' own log lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@click.pass_context
def logs(ctx: click.Context, service: str | None, plugin_only: bool, follow: bool, tail: int | None) -> None:
    """Print the gateway's and backend's logs."""
    from .runtime import runtime_for_state

    project = _project(ctx)
    rt = runtime_for_state(project, None)
    for line in rt.logs(project, service=service, plugin_only=plugin_only, follow=follow, tail=tail):
        click.echo(line)


@main.command()
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def probe(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Run the probes from hlocal.yaml against the running stack."""
    from .probe import run_probes
    from .report import print_probe_results
    from .runtime import require_running

    project = _project(ctx)
    state = require_running(project)
    results = run_probes(project, state, names)
    print_probe_results(results, as_json=as_json)
    failed = [r for r in results if not r.passed]
    if failed:
        raise ProbeFailed(f"{len(failed)} of {len(results)} probes failed",
                          "see each failure above; `hlocal logs --plugin` shows what the plugins logged")


@main.command()
@click.argument("method")
@click.argument("path")
@click.option("-H", "--header", "headers", multiple=True, help="Header as 'Name: value' (repeatable).")
@click.option("-d", "--data", default=None, help="Request body (use @FILE to read a file).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def request(ctx: click.Context, method: str, path: str, headers: tuple[str, ...], data: str | None, as_json: bool) -> None:
    """Send one request; show the response and what the backend received."""
    from .probe import send_request
    from .report import print_exchange
    from .runtime import require_running

    from .validate import check_method, check_path

    project = _project(ctx)
    check_method(method, "request method")
    check_path(path, "request path")
    pairs, body = _parse_headers(headers), _read_data(data)  # usage errors first, running or not
    state = require_running(project)
    exchange = send_request(state, method, path, pairs, body, observe=project)
    print_exchange(exchange, as_json=as_json)


@main.command()
@_runtime_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def check(ctx: click.Context, runtime: str | None, as_json: bool) -> None:
    """Inspect each plugin module and say whether the gateway can run it."""
    from .plugins import check_project
    from .report import print_check
    from .runtime import resolve_flavor

    project = _project(ctx)
    flavor = resolve_flavor(project, runtime)
    report = check_project(project, flavor)
    print_check(report, as_json=as_json)
    if not report.runnable:
        refused = [p.plugin.name for p in report.plugins if not p.compat.runnable]
        raise PluginError(f"the {flavor} gateway cannot run: {', '.join(refused)}",
                          "see the problems listed above for each plugin")


@main.command()
@_runtime_option
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Directory to write into (default: .hlocal/<name>/ when the stack is not running).")
@click.pass_context
def render(ctx: click.Context, runtime: str | None, out: str | None) -> None:
    """Write what `up` would run, to run it by hand (eject)."""
    from .eject import render_stack

    project = _project(ctx)
    rendered = render_stack(project, runtime, out)
    click.echo(f"rendered the {rendered.runtime} stack of {project.name} into {rendered.directory}")
    for line in rendered.instructions:
        click.echo(f"  {line}")


@main.command()
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

    from .errors import ConfigError
    from .export import export_higress

    project = _project(ctx)
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


REQUEST_BODY_CAP = 256 * 1024 * 1024  # -d @FILE: never read a device or a huge file whole


def _parse_headers(raw: tuple[str, ...]) -> list[tuple[str, str]]:
    from .errors import ConfigError
    from .validate import check_header

    out = []
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"-H {item!r}: expected 'Name: value'", "for example -H 'x-user: alice'")
        check_header(name.strip(), value.strip(), f"-H {item!r}")
        out.append((name.strip(), value.strip()))
    return out


def _read_data(data: str | None) -> bytes | None:
    from pathlib import Path

    from .errors import ConfigError
    from .fileguard import read_regular_file


    if data is None:
        return None
    if data.startswith("@"):
        return read_regular_file(Path(data[1:]), REQUEST_BODY_CAP, f"-d {data}", error=ConfigError,
                                 hint="give a regular file (the mock backend's body limit applies)")
    return data.encode()


@main.command("test", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_runtime_option
@click.option("--build/--no-build", "build", default=None,
              help="Build plugins first (default: those with a build section whose sources are newer than the wasm).")
@click.option("--keep", is_flag=True, help="Leave the stack running afterwards.")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for ready.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def smoke_test(ctx: click.Context, runtime: str | None, build: bool | None, keep: bool, timeout: float,
               pytest_args: tuple[str, ...]) -> None:
    """Start the stack, run the smoke tests with pytest (default: tests/), stop it; exit with pytest's status.

    Arguments after hlocal's own options go to pytest, e.g. `hlocal test -- -k headers -x`.
    """
    from .testrun import require_pytest, run_smoke_tests

    project = _project(ctx)
    require_pytest()
    _build_before_up(project, build)
    code = run_smoke_tests(project, pytest_args, runtime=runtime, keep=keep, timeout=timeout,
                           echo=lambda m: click.echo(m, err=True))
    ctx.exit(code)


@main.command("init")
@click.option("--wasm", default=None, help="The plugin's module, relative to the directory (default: main.wasm).")
@click.option("--force", is_flag=True, help="Overwrite hlocal.yaml and tests/test_smoke.py if they exist.")
@click.pass_context
def init_command(ctx: click.Context, wasm: str | None, force: bool) -> None:
    """Write a commented hlocal.yaml and tests/test_smoke.py for the plugin in this directory."""
    from pathlib import Path

    from .scaffold import init_project

    given = ctx.obj["config_file"]
    directory = (Path(given) if Path(given).is_dir() else Path(given).parent) if given else Path.cwd()
    result = init_project(directory, wasm=wasm, force=force)
    for path in result.written:
        click.echo(f"wrote {path}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo("next: hlocal test   (or: hlocal up, then pytest)")


@main.command("new")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Create the project folder NAME inside this directory.")
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
def new_command(name: str, parent: str, force: bool) -> None:
    """Create a wasm-go SDK plugin project: go.mod, main.go, hlocal.yaml, a smoke test, README."""
    from pathlib import Path

    from .newplugin import new_project

    result = new_project(Path(parent), name, force=force)
    for path in result.written:
        click.echo(f"wrote {path}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for line in result.next_steps:
        click.echo(line)


from .cli_push import push_command  # noqa: E402  (a command of its own module; click only)

main.add_command(push_command, "push")


if __name__ == "__main__":  # pragma: no cover
    main()
