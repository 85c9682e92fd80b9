"""What the commands print: short, aligned, and JSON on request."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import click

from ..probe.exchanges import format_exchange
from ..config.project import find_config
from ..errors import ConfigError


def _json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2, default=str))


def follow_up_flags(project_file: Path, cwd: Path, name_override: str | None = None) -> str:
    """The flags a follow-up command needs from `cwd`: `-f DIR` unless hlocal finds this project there
    by itself (upwards from the cwd), and `--name` when the stack was started under another name."""
    flags = []
    try:
        found = find_config(None, cwd) == project_file
    except ConfigError:
        found = False
    if not found:
        target = project_file.parent if project_file.name == "hlocal.yaml" else project_file
        relative = os.path.relpath(target, cwd)
        shown = relative if relative.split(os.sep).count(os.pardir) <= 2 else str(target)
        flags.append(f"-f {shlex.quote(shown)}")
    if name_override:
        flags.append(f"--name {shlex.quote(name_override)}")
    return "".join(f" {flag}" for flag in flags)


def print_up_summary(result, follow_up: str = "", capture: bool = False) -> None:
    state = result.state
    applied = list(result.applied)  # `up` on a running stack: what it applied, and how
    if result.already_running:
        what = applied.pop(0) if applied else "nothing changed (--recreate restarts it)"
        click.echo(f"{state.name} is already running ({state.runtime}); {what}")
    else:
        click.echo(f"{state.name} is up on the {state.runtime} runtime ({_flavor(state.flavor)}) "
                   f"in {result.seconds:.1f} s")
    for line in applied:
        click.echo(line)
    click.echo(f"  gateway  {state.gateway_url}")
    if state.https_url:
        click.echo(f"  https    {state.https_url}  (self-signed: {state.tls_cert or '?'})")
    click.echo(f"  admin    {state.admin_url}")
    click.echo(f"  backend  mock (journal: {state.control_url}/__hlocal/journal)")
    for plugin in state.plugins:
        adapted = f"; adapted: {', '.join(plugin.adaptations)}" if plugin.adaptations else ""
        click.echo(f"  plugin   {plugin.name}  sha256 {plugin.sha256[:12]}  ABI {plugin.abi}{adapted}")
    for plan in state.services.values():
        where = {"mock": "mock", "redis": "redis", "url": "url", "image": "container"}[plan.how]
        journal = f" (journal: {plan.control_url}/__hlocal/journal)" if plan.control_url else ""
        if plan.replicas:  # mock.replicas: one host of the cluster each, each with its own journal
            click.echo(f"  service  {plan.name}  {plan.cluster} → {len(plan.replicas)} mock replicas")
            for r in plan.replicas:
                click.echo(f"    {plan.name}[{r.index}]  {plan.address}:{r.port} (journal: {r.control_url}/__hlocal/journal)")
            continue
        click.echo(f"  service  {plan.name}  {plan.cluster} → {where} {plan.address}:{plan.port}{journal}")
    if capture:  # gateway.inspect (natively on by default)
        click.echo(f"  inspect  requests captured: hlocal{follow_up} inspect · hlocal{follow_up} ui "
                   "(gateway.inspect: false and a reload turn it off)")
    for note in result.notes:
        click.echo(f"  note     {note}")
    click.echo(f"try: curl -i {state.gateway_url}/   ·   hlocal{follow_up} probe   ·   "
               f"hlocal{follow_up} logs   ·   hlocal{follow_up} down")


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
    width = max(8, *(len(c.name) for c in report.components))
    for c in report.components:
        ports = ", ".join(f"{k} {v}" for k, v in c.ports.items())
        extra = ""
        if c.state != "running":
            extra = f"exit code {c.exit_code}" if c.exit_code is not None else ""
            extra = ", ".join(x for x in (extra, c.detail) if x)
        elif c.health:
            extra = f"health {c.health}"
        click.echo(f"  {c.name:<{width}} {c.state:<8} pid {c.pid or '-':<7} up {_duration(c.uptime_seconds):<7} "
                   f"{ports}{'  ' + extra if extra else ''}")
    for p in report.plugins:
        crashes = p.get("crashes") or []
        crashed = f"  crashed {len(crashes)}x, last: {crashes[-1]}" if crashes else ""
        click.echo(f"  plugin   {p['name']}  sha256 {p['sha256'][:12]}  ABI {p['abi']}{crashed}")


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
        if not r.passed and r.exchange.effects is not None:
            for note in r.exchange.effects.notes:
                click.echo(f"        note: {note}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")


def print_exchange(exchange, *, as_json: bool) -> None:
    if as_json:
        _json(exchange.to_dict())
        return
    for line in format_exchange(exchange):
        click.echo(line)


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
        foreign = getattr(info, "foreign_candidates", ())
        if foreign:
            click.echo(f"  foreign  {', '.join(foreign)} (Higress foreign functions it may call)")
        where = " · ".join(name for name, ok in check.runs_on().items() if ok) or "nowhere"
        click.echo(f"  runs on  {where}")
        for item in compat.adaptations:
            click.echo(f"  adapt    {item}")
        for emulation in check.emulations():  # Higress-only functions this module uses, on stock Envoy
            if emulation.refused:
                continue  # listed under problems, with the reason
            click.echo(f"  emulated {emulation.key}: {emulation.hlocal}")
            if emulation.differs:
                click.echo(f"  differs  {emulation.key}: {emulation.differs}")
        for item in getattr(compat, "notes", []):
            click.echo(f"  note     {item}")
        for item in compat.problems:
            click.echo(f"  problem  {item}")
    click.echo("chain (in the order requests meet the filters):")
    for index, item in enumerate(report.chain, 1):
        if "plugin" in item:
            click.echo(f"  {index}. {item['plugin']}  (phase {item['phase']}, priority {item['priority']})")
        else:
            click.echo(f"  {index}. {item['filter']}  ({item['what']})")
    click.echo("routes:")
    for route in report.routes:
        match = next(f"{k} {route[k]}" for k in ("path", "regex", "prefix") if k in route)
        click.echo(f"  {route['name']}: {', '.join(route['domains'])} {match} -> {route['cluster']}")
    for service in report.services:
        click.echo(f"service {service['name']} ({service['kind']}): {service['cluster']}")
    if report.emulations:  # stock Envoy: what every request meets differently from Higress, said plainly
        click.echo("emulated Higress behaviour (stock Envoy), and what still differs:")
        for emulation in report.emulations:
            click.echo(f"  {emulation['key']}: {emulation['differs'] or 'as on Higress'}")
    for note in report.notes:
        click.echo(f"note: {note}")


def print_stacks(entries, *, as_json: bool) -> None:
    """`hlocal ls`: one line per running stack."""
    if as_json:
        _json([e.to_dict() for e in entries])
        return
    if not entries:
        click.echo("no hlocal stack is running on this machine")
        return
    rows = [("NAME", "RUNTIME", "HEALTH", "UPTIME", "URL", "FOLDER")]
    rows += [(e.name, e.runtime, e.health, _duration(e.uptime_seconds), e.url or "-", e.folder) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(cell.ljust(widths[i]) if i < 5 else cell for i, cell in enumerate(row)))


def print_config(doc: dict, *, as_json: bool) -> None:
    """`hlocal config`: the resolved configuration."""
    if as_json:
        _json(doc)
        return
    import yaml

    click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)
