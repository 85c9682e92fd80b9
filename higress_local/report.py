"""What the commands print: short, aligned, and JSON on request."""

from __future__ import annotations

import json
from typing import Any

import click


def _json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, default=str))


def print_up_summary(result) -> None:
    state = result.state
    if result.already_running:
        click.echo(f"{state.name} is already running ({state.runtime}); nothing changed "
                   f"(use --recreate to restart it)")
    else:
        click.echo(f"{state.name} is up on the {state.runtime} runtime ({_flavor(state.flavor)}) "
                   f"in {result.seconds:.1f} s")
    click.echo(f"  gateway  {state.gateway_url}")
    click.echo(f"  admin    {state.admin_url}")
    click.echo(f"  backend  mock (journal: {state.control_url}/__hlocal/journal)")
    for plugin in state.plugins:
        adapted = f"; adapted: {', '.join(plugin.adaptations)}" if plugin.adaptations else ""
        click.echo(f"  plugin   {plugin.name}  sha256 {plugin.sha256[:12]}  ABI {plugin.abi}{adapted}")
    for note in result.notes:
        click.echo(f"  note     {note}")
    click.echo(f"try: curl -i {state.gateway_url}/   ·   hlocal probe   ·   hlocal down")


def _flavor(flavor: str) -> str:
    return "stock Envoy" if flavor == "envoy" else "Higress gateway"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def print_status(report, *, as_json: bool) -> None:
    if as_json:
        _json(report.to_dict())
        return
    if not report.components:
        click.echo(f"{report.name}: not running")
        return
    overall = "running" if report.running else "degraded"
    click.echo(f"{report.name} ({report.runtime}, {_flavor(report.flavor or 'envoy')}): {overall}")
    for c in report.components:
        ports = ", ".join(f"{k} {v}" for k, v in c.ports.items())
        extra = ""
        if c.state != "running":
            extra = f"exit code {c.exit_code}" if c.exit_code is not None else ""
            extra = ", ".join(x for x in (extra, c.detail) if x)
        elif c.health:
            extra = f"health {c.health}"
        click.echo(f"  {c.name:<8} {c.state:<8} pid {c.pid or '-':<7} up {_duration(c.uptime_seconds):<7} "
                   f"{ports}{'  ' + extra if extra else ''}")
    for p in report.plugins:
        click.echo(f"  plugin   {p['name']}  sha256 {p['sha256'][:12]}  ABI {p['abi']}")


def print_probe_results(results, *, as_json: bool) -> None:
    if as_json:
        _json({"passed": all(r.passed for r in results), "probes": [r.to_dict() for r in results]})
        return
    width = max(len(r.name) for r in results)
    for r in results:
        mark = click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark}  {r.name:<{width}}  {r.exchange.method} {r.exchange.path} -> {r.exchange.status}")
        for m in r.mismatches:
            click.echo(f"        {m.what}: expected {m.expected!r}, got {m.actual!r}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")


def print_exchange(exchange, *, as_json: bool) -> None:
    if as_json:
        _json(exchange.to_dict())
        return
    click.echo(f"> {exchange.method} {exchange.url}")
    click.echo(f"< {exchange.status}  ({exchange.seconds * 1000:.0f} ms)")
    for name, value in exchange.response_headers.items():
        click.echo(f"< {name}: {value}")
    body = exchange.response_text()
    doc = exchange.response_json()
    up = exchange.upstream
    if up is not None and isinstance(doc, dict) and doc.get("headers") == up.get("headers"):
        click.echo("\n(the backend's echo of the request it received, shown below)")
    elif doc is not None:
        click.echo("")
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif body:
        click.echo("")
        click.echo(body.rstrip("\n"))
    click.echo("")
    if up is None:
        click.echo("backend received: nothing (the gateway answered without calling the backend)")
        return
    query = "&".join(f"{k}={v}" for k, vs in up.get("query", {}).items() for v in vs)
    click.echo(f"backend received: {up['method']} {up['path']}{'?' + query if query else ''}")
    for name, values in up.get("headers", {}).items():
        for value in values:
            click.echo(f"  {name}: {value}")
    if up.get("body"):
        click.echo("")
        click.echo("  " + up["body"].rstrip("\n").replace("\n", "\n  "))


def print_check(report, *, as_json: bool) -> None:
    if as_json:
        _json(report.to_dict())
        return
    click.echo(f"gateway: {_flavor(report.flavor)}")
    for check in report.plugins:
        info, compat = check.info, check.compat
        verdict = click.style("ok", fg="green") if compat.runnable else click.style("cannot run", fg="red")
        click.echo(f"plugin {check.plugin.name}: {verdict}")
        click.echo(f"  file     {check.plugin.wasm} ({info.size:,} bytes)")
        click.echo(f"  sha256   {info.sha256}")
        click.echo(f"  ABI      {info.abi_version or 'none'}")
        click.echo(f"  imports  {', '.join(info.host_functions) or '-'}")
        for item in compat.adaptations:
            click.echo(f"  adapt    {item}")
        for item in getattr(compat, "notes", []):
            click.echo(f"  note     {item}")
        for item in compat.problems:
            click.echo(f"  problem  {item}")
