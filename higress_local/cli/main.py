"""The commands that run a stack: thin Click commands over the library.

They are listed in the group's table (`cli/group.py`), which imports this module only to run one.
"""

from __future__ import annotations

import os

import click

from .group import main  # noqa: F401  (the `hlocal` group, also importable from here)
from .options import json_option, project_from, project_options, runtime_option as _runtime_option
from .progress import Phases, Progress
from .report import follow_up_flags, print_exchange, print_probe_results, print_status, print_up_summary
from ..agent.control import ensure_agent
from ..config.validate import check_header, check_method, check_path
from ..errors import ConfigError, HlocalError, PluginError, ProbeFailed, Stopped, Unhealthy
from ..gatewaylog.logs import parse_since
from ..inspect.view import capturing
from ..probe.observe import startup_warnings_of
from ..probe.send import run_probes, send_request
from ..project.watch import watch as watch_files
from ..settings import ENV_UP_TIMEOUT, UP_TIMEOUT_S
from ..stack import Stack, down_stack, reload_stack, require_running, up_stack
from ..state import StackState
from ..system.orphans import component_of, find_marked
from ..system.userfiles import read_regular_file
from ..testing.compare import compare_runtimes
from ..testing.testrun import require_pytest, run_smoke_tests
from ..wasm.gobuild import build_plugin, needs_build

_project = project_from


@click.command()
@project_options(port=True)
@_runtime_option
@click.option("--recreate", is_flag=True, help="Stop a running stack and start it afresh.")
@click.option("--timeout", type=float, default=UP_TIMEOUT_S, show_default=True, envvar=ENV_UP_TIMEOUT,
              help="Seconds to wait for ready (env: HLOCAL_UP_TIMEOUT).")
@click.option("--build/--no-build", "build", default=None,
              help="Build plugins first (default: those with a build section whose sources are newer than the wasm).")
@click.option("--watch", "watch_after", is_flag=True, help="Then rebuild and reload on every change.")
@click.option("--strict", is_flag=True, help="Fail (exit 4) when a plugin logs at error/critical level while starting.")
@click.option("--foreground", is_flag=True,
              help="Stay attached: print the stack's logs; Ctrl-C (or SIGTERM) stops the stack.")
@click.pass_context
def up(ctx: click.Context, runtime: str | None, recreate: bool, timeout: float, build: bool | None,
       watch_after: bool, strict: bool, foreground: bool) -> None:
    """Start the gateway, plugins and mock backend; wait until ready. On a running stack, apply what changed."""
    from pathlib import Path

    project = _project(ctx)
    rt, result = up_stack(project, runtime, recreate=recreate, timeout=timeout,
                          echo=lambda m: click.echo(m, err=True), build=lambda: _build_before_up(project, build),
                          starting=lambda name: Progress(f"starting {project.name} ({name})",
                                                         detail=lambda: _up_detail(project)))
    layout = result.state.layout
    print_up_summary(result, follow_up_flags(project.file, Path.cwd(), ctx.obj.name),
                     capture=capturing(project.state_dir, layout.inspect_dir) if layout else False)
    _start_agent(project)
    if not result.already_running:  # else the log holds an earlier start and requests since
        _startup_warnings(project, strict)
    if foreground:
        _foreground(project, rt, result.state)
        return
    if watch_after:
        _watch(project)


def _foreground(project, rt, state) -> None:
    """`up --foreground`: follow the merged logs until a stop signal, then stop the stack (as `down`)."""
    click.echo("running in the foreground: Ctrl-C stops the stack", err=True)
    try:
        for line in rt.logs(project, state, service=None, plugin_only=False, follow=True, tail=0):
            click.echo(line)
    except (KeyboardInterrupt, Stopped):
        pass
    finally:
        # A second Ctrl-C must not cut the stop short.
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)

        stopped = down_stack(project, echo=lambda m: click.echo(m, err=True), started=rt)
        click.echo(f"stopped {', '.join(stopped)}" if stopped else f"{project.name}: nothing running", err=True)


def _startup_warnings(project, strict: bool) -> None:
    """A plugin that logged a [critical] config error may fall back to deny-all and still be 'ready'."""
    warnings = startup_warnings_of(project)
    for line in warnings:
        click.secho(f"warning: a plugin logged while starting: {line}", fg="yellow", err=True)
    if strict and warnings:
        raise PluginError(f"{len(warnings)} plugin log line(s) at error/critical level while starting (--strict)",
                          "see the warnings above; fix the plugin's configuration, or drop --strict")


def _up_detail(project) -> str | None:
    """What `up` is waiting for, for the progress line: a large module compiles for seconds."""
    state = StackState.load_or_none(project.state_dir)
    if state is None:
        return "preparing"
    if "gateway" in state.components or state.runtime == "docker":
        names = [p.name for p in state.plugins]
        if not names:
            return "Envoy is starting"
        return f"Envoy is starting plugin{'s' if len(names) > 1 else ''} {', '.join(names)}"
    return "starting the backend and services"


def _down_detail(project) -> str:
    """What `down` is waiting for: the stack's processes still there (a gateway draining, a collector
    flushing), found by their marker, so that `down` still reads state.json once."""
    alive = sorted({component_of(proc) for proc in find_marked(project.state_dir)} - {"?"})
    return f"waiting for {', '.join(alive)} to exit" if alive else "stopping what is left"


def _build_before_up(project, build: bool | None) -> None:
    if build is False:
        return
    for plugin in project.plugins:
        if plugin.build is not None and (build or needs_build(plugin)):
            with Progress(f"building {plugin.name}") as progress:
                done = build_plugin(plugin, echo=lambda line: progress.echo(f"  | {line}"))
            click.echo(f"built {plugin.name} in {done.seconds:.1f} s: {done.size:,} bytes, sha256 {done.sha256[:12]}",
                       err=True)


def _watch(project) -> None:
    try:
        watch_files(project.file, echo=click.echo, phase=Phases().phase)
    except KeyboardInterrupt:
        click.echo(f"stopped watching; the stack is still running (hlocal down to stop it)", err=True)


@click.command()
@project_options(name=False)
@click.argument("plugins", nargs=-1)
@click.option("--in-docker", is_flag=True, help="Build in a golang container (plugins[].build.image).")
@click.pass_context
def build(ctx: click.Context, plugins: tuple[str, ...], in_docker: bool) -> None:
    """Compile plugins to wasm and inspect the result."""
    project = _project(ctx)
    chosen = [project.plugin(n) for n in plugins] or [p for p in project.plugins if p.build is not None]
    if not chosen:
        raise ConfigError(f"no plugin in {project.file.name} has a build section",
                          "add `build: {}` to a plugin for the default `go build`")
    for plugin in chosen:
        with Progress(f"building {plugin.name}") as progress:
            done = build_plugin(plugin, echo=lambda line: progress.echo(f"  | {line}"), in_docker=in_docker)
        click.echo(f"built {plugin.name} in {done.seconds:.1f} s: {done.wasm} ({done.size:,} bytes), "
                   f"sha256 {done.sha256}, ABI {done.abi or 'none'}")


@click.command()
@project_options()
@click.argument("plugins", nargs=-1)
@click.option("--build/--no-build", "build", default=True, help="Rebuild plugins whose sources changed (default).")
@click.option("--restart", is_flag=True, help="Restart the gateway instead of swapping in place.")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for the swap.")
@click.pass_context
def reload(ctx: click.Context, plugins: tuple[str, ...], build: bool, restart: bool, timeout: float) -> None:
    """Swap new builds, plugin configs, routes and stubs into the running gateway."""
    project = _project(ctx)
    phases = Phases()
    result = reload_stack(project, names=plugins, build=build, restart=restart, timeout=timeout,
                          echo=lambda line: phases.echo(f"  | {line}"), phase=phases.phase)
    if not result.changed:
        click.echo("nothing changed")
    for line in result.lines:
        click.echo(line)
    _start_agent(project)


def _start_agent(project) -> None:
    """The stack's reload agent (runtime/agent.py): the next `hlocal reload` is served warm. Best effort."""
    try:
        ensure_agent(project.state_dir)
    except HlocalError as exc:  # the stack runs; only the next reload is slower
        click.echo(f"note: the reload agent did not start ({exc.message}); reloads run without it", err=True)


@click.command()
@project_options()
@click.pass_context
def watch(ctx: click.Context) -> None:
    """Rebuild and reload the running stack whenever plugin sources or hlocal.yaml change."""
    project = _project(ctx)
    require_running(project)
    _watch(project)


@click.command()
@project_options()
@_runtime_option
@click.option("--clean", is_flag=True, help="Also remove the stack's folder .hlocal/<name>/ (logs, rendered files).")
@click.pass_context
def down(ctx: click.Context, runtime: str | None, clean: bool) -> None:
    """Stop everything of this stack (safe to run twice)."""
    project = _project(ctx)
    with Progress(f"stopping {project.name}", detail=lambda: _down_detail(project)) as progress:
        stopped = down_stack(project, runtime, clean=clean, echo=progress.echo)
    click.echo(f"stopped {', '.join(stopped)}" if stopped else f"{project.name}: nothing running")
    if clean:
        click.echo(f"removed {project.state_dir}")


def _add_crashes(stack: Stack, report) -> None:
    """Each plugin's VM traps so far (`crashes`: what each said), from the running gateway's log."""
    if not report.components:
        return
    try:
        crashes = stack.plugin_crashes()
    except (HlocalError, OSError):  # no log to read (a docker gateway that is gone): nothing to add
        return
    for plugin in report.plugins:
        plugin["crashes"] = crashes.get(plugin["name"], []) + crashes.get("", [])


@click.command()
@project_options()
@_runtime_option
@json_option()
@click.pass_context
def status(ctx: click.Context, runtime: str | None, as_json: bool) -> None:
    """Show each component: state, pid, ports, plugin sha, uptime. Exit 1 when not healthy."""
    project = _project(ctx)
    stack = Stack.resolve(project, runtime)
    report = stack.status()
    _add_crashes(stack, report)
    print_status(report, as_json=as_json)
    if not report.running:  # scripts can say `hlocal status && ...`
        if not report.components:
            raise Unhealthy(f"stack {project.name!r} is not running", "start it with `hlocal up`")
        raise Unhealthy(f"stack {project.name!r} is degraded",
                        report.problem or "see the components above; `hlocal up --recreate` restarts it")


@click.command()
@project_options(short_file=False)
@_runtime_option
@click.argument("service", required=False, metavar="[gateway|backend|access|svc-NAME]")
@click.option("--plugin", "plugin_only", is_flag=True, help="Only the plugins' own lines, as `plugin: message`.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", type=int, default=None, help="Only the last N lines.")
@click.option("--since", default=None, metavar="WHEN", help="Only lines since a duration ago (10s, 5m, 1h) or a time (ISO 8601).")
@click.option("-t", "--timestamps", is_flag=True, help="Show each line's time (UTC, ISO 8601).")
@click.option("--no-prefix", is_flag=True, help="Do not prefix lines with the component's name.")
@click.pass_context
def logs(ctx: click.Context, runtime: str | None, service: str | None, plugin_only: bool, follow: bool,
         tail: int | None, since: str | None, timestamps: bool, no_prefix: bool) -> None:
    """Print the stack's logs merged in time order (`access`: the gateway's access log)."""
    cutoff = parse_since(since) if since else None
    project = _project(ctx)
    stack = Stack.resolve(project, runtime)
    for line in stack.logs(service=service, plugin_only=plugin_only, follow=follow, tail=tail, since=cutoff,
                           timestamps=timestamps, prefix=False if no_prefix else None):
        click.echo(line)


@click.command()
@project_options()
@click.argument("names", nargs=-1)
@json_option()
@click.pass_context
def probe(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Run the probes from hlocal.yaml against the running stack."""
    project = _project(ctx)
    state = require_running(project)
    results = run_probes(project, state, names)
    print_probe_results(results, as_json=as_json)
    failed = [r for r in results if not r.passed]
    if failed:
        raise ProbeFailed(f"{len(failed)} of {len(results)} probes failed",
                          "see each failure above; `hlocal logs --plugin` shows what the plugins logged")


@click.command()
@project_options()
@click.argument("method")
@click.argument("path")
@click.option("-H", "--header", "headers", multiple=True, help="Header as 'Name: value' (repeatable).")
@click.option("-d", "--data", default=None, help="Request body (use @FILE to read a file).")
@json_option()
@click.pass_context
def request(ctx: click.Context, method: str, path: str, headers: tuple[str, ...], data: str | None, as_json: bool) -> None:
    """Send one request; show the response and what the backend received."""
    project = _project(ctx)
    check_method(method, "request method")
    check_path(path, "request path")
    pairs, body = _parse_headers(headers), _read_data(data)  # usage errors first, running or not
    state = require_running(project)
    exchange = send_request(state, method, path, pairs, body, observe=project)
    print_exchange(exchange, as_json=as_json)


REQUEST_BODY_CAP = 256 * 1024 * 1024  # -d @FILE: never read a device or a huge file whole


def _parse_headers(raw: tuple[str, ...]) -> list[tuple[str, str]]:
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


    if data is None:
        return None
    if data.startswith("@"):
        return read_regular_file(Path(data[1:]), REQUEST_BODY_CAP, f"-d {data}", error=ConfigError,
                                 hint="give a regular file (the mock backend's body limit applies)")
    return data.encode()


@click.command("test", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@project_options(port=True)
@_runtime_option
@click.option("--build/--no-build", "build", default=None,
              help="Build plugins first (default: those with a build section whose sources are newer than the wasm).")
@click.option("--keep", is_flag=True, help="Leave the stack running afterwards.")
@click.option("--timeout", type=float, default=UP_TIMEOUT_S, show_default=True, envvar=ENV_UP_TIMEOUT,
              help="Seconds to wait for ready (env: HLOCAL_UP_TIMEOUT).")
@click.option("--junitxml", type=click.Path(dir_okay=False),
              help="Write the results as JUnit XML to this file (pytest's --junitxml).")
@click.option("--compare", type=click.Choice(["native", "docker"]), default=None,
              help="Run the same tests on this runtime too; print each test's outcome on both; exit 1 if any differs.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def smoke_test(ctx: click.Context, runtime: str | None, build: bool | None, keep: bool, timeout: float,
               junitxml: str | None, compare: str | None, pytest_args: tuple[str, ...]) -> None:
    """Start the stack, run the smoke tests with pytest (default: tests/), stop it; exit with pytest's status.

    Arguments after hlocal's own options go to pytest, e.g. `hlocal test -- -k headers -x`.
    """
    project = _project(ctx)
    require_pytest()
    _build_before_up(project, build)
    if compare is not None:
        if keep:
            raise ConfigError("--keep and --compare do not go together", "--compare stops each stack after its run")
        ctx.exit(compare_runtimes(project, pytest_args, runtime=runtime, other=compare, timeout=timeout,
                                  echo=lambda m: click.echo(m, err=True), out=click.echo,
                                  junitxml=os.path.abspath(junitxml) if junitxml else None))
    if junitxml is not None:
        pytest_args = (f"--junitxml={os.path.abspath(junitxml)}", *pytest_args)
    code = run_smoke_tests(project, pytest_args, runtime=runtime, keep=keep, timeout=timeout,
                           echo=lambda m: click.echo(m, err=True))
    ctx.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
