"""`hlocal inspect [ID] [--replay]` and `hlocal ui`: the request inspector's commands (registered in cli/main.py)."""

from __future__ import annotations

import json

import click

from .options import json_option, project_from, project_options
from ..errors import ConfigError
from ..inspect.store import Store
from ..inspect.ui import InspectorServer, ui_token
from ..inspect.view import capturing, format_list, format_record, list_row, record_json, replay_request, store_dir, stored_record
from ..probe.send import REQUEST_ID_HEADER, send_request
from ..stack import require_running


def _captures(ctx: click.Context):
    """The running stack's state and its capture store; a clear error when capture is off."""
    project = project_from(ctx)
    state = require_running(project)
    if state.layout is None or not state.layout.inspect_dir:
        raise ConfigError(f"stack {state.name!r} captures no requests",
                          "set `gateway: {inspect: true}` in hlocal.yaml and run `hlocal up` again")
    if not capturing(project.state_dir, state.layout.inspect_dir):
        click.echo("capture is off (gateway.inspect: false); set it true and `hlocal reload` to turn it on",
                   err=True)
    return project, state, Store(store_dir(project.state_dir))


@click.command("inspect")
@project_options()
@click.argument("request_id", metavar="[ID]", type=int, required=False)
@click.option("-n", "limit", type=int, default=20, show_default=True, help="How many recent requests to list.")
@click.option("--replay", is_flag=True, help="Send request ID's original client request again.")
@json_option()
@click.pass_context
def inspect_command(ctx: click.Context, request_id: int | None, limit: int, replay: bool, as_json: bool) -> None:
    """List the requests the gateway handled, or show one: the four views and what the plugins changed.

    Every request through the gateway is captured (any client), newest first: the request as the
    client sent it and as it left the plugins, the response as the upstream sent it and as the client
    got it, with the plugins' log lines and the calls they made to services.
    """
    project, state, store = _captures(ctx)
    if request_id is None:
        if replay:
            raise ConfigError("--replay needs a request ID", "`hlocal inspect` lists them")
        records = list(store.recent(limit=max(limit, 1)))
        if as_json:
            click.echo(json.dumps({"requests": [list_row(r) for r in records]}, indent=2, ensure_ascii=False))
            return
        for line in format_list(records):
            click.echo(line)
        return
    record = store.get(request_id)
    if record is None:
        kept = store.ids()
        where = f"kept: {kept[0]}…{kept[-1]}" if kept else "none captured yet"
        raise ConfigError(f"no captured request #{request_id}", f"the ring keeps the newest requests ({where})")
    if replay:
        replayed = replay_stored(state, store, record)
        if as_json:
            click.echo(json.dumps(replayed, indent=2))
            return
        stored = (f"stored as #{replayed['id']} (`hlocal inspect {replayed['id']}`)" if replayed["id"] is not None
                  else f"not captured within {REPLAY_CAPTURE_S:.0f} s; `hlocal inspect` lists it once it is")
        click.echo(f"replayed #{request_id}: {replayed['method']} {replayed['path']} -> {replayed['status']}  "
                   f"({replayed['ms']:.0f} ms); {stored}")
        return
    if as_json:
        click.echo(json.dumps(record_json(record), indent=2, ensure_ascii=False))
        return
    for line in format_record(record):
        click.echo(line)


# The collector stores a request about a second after it ends (inspect/collector.py); allow for a loaded machine.
REPLAY_CAPTURE_S = 10.0


def replay_stored(state, store, record: dict) -> dict:
    """Send a captured client request again and return once the replay's own entry is stored:
    {replayed, id (None when it was not captured in time), method, path, status, ms}."""
    method, path, headers, body = replay_request(record)
    exchange = send_request(state, method, path, headers, body)
    tag = next(v for n, v in exchange.request_headers if n == REQUEST_ID_HEADER)
    stored = stored_record(store, tag, REPLAY_CAPTURE_S)
    return {"replayed": record["id"], "id": stored["id"] if stored else None, "method": method, "path": path,
            "status": exchange.status, "ms": round(exchange.seconds * 1000, 1)}


def replayer(state, store):
    """What the page's Replay button runs: the original client request, sent again."""

    def replay(record_id: int) -> dict:
        record = store.get(record_id)
        if record is None:
            raise ConfigError(f"no captured request #{record_id}", "it fell out of the ring")
        return replay_stored(state, store, record)

    return replay


@click.command("ui")
@project_options()
@click.option("--port", "ui_port", type=int, default=0, show_default=True, help="Port on 127.0.0.1 (0: a free one).")
@click.option("--open/--no-open", "open_browser", default=True, show_default=True, help="Open the page in a browser.")
@click.pass_context
def ui_command(ctx: click.Context, ui_port: int, open_browser: bool) -> None:
    """Serve the request inspector as a local web page (live list, the four views, replay)."""
    project, state, store = _captures(ctx)
    server = InspectorServer(ui_port, store, ui_token(project.state_dir), replayer(state, store))
    click.echo(f"inspector: {server.url}")
    click.echo("(the token in the URL is this stack's; Ctrl-C stops the page)", err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
