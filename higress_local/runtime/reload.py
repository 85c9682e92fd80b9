"""`hlocal reload`: swap new modules, plugin configs, routes and stubs into the running gateway in place.

Plugins are ECDS resources read from watched files: replacing a file by rename makes Envoy build
the new filter config while the old one keeps serving, and switch only when it is valid. Routes
and clusters are RDS/CDS files handled the same way; stubs go to the mock's control API.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager

from ..gatewaylog.classify import LogWatch
from ..config.project import Plugin, Project
from ..errors import ConfigError, EnvironmentProblem, HlocalError, PluginError, WaitTimeout
from .redeliver import Redelivery
from .restart import restart_stack
from ..system.readiness import CDS_STAT_PREFIX, RDS_STAT_PREFIX, ecds_stats, xds_stats
from ..render.envoy import CLUSTERS_FILE, ROUTES_FILE, ecds_file_name, plugin_filter_name, render_ecds
from . import RunningStack, open_running
from .files import GatewayFiles, Swap
from .lock import stack_lock
from ..inspect.store import switch_capture
from .stage import config_sha256, ecds_version, plugin_state, restart_key, source_stat, version_of, xds_documents
from ..state import PluginState, StackState
from ..system.wait import Deadline, NotYet
from ..mock.client import MockClient, MockClientError
from ..wasm.adapt.upstream import upstream_table
from ..wasm.gobuild import build_plugin, needs_build
from ..wasm.plugins import check_plugin, CheckReport, prepare, require_runnable

if TYPE_CHECKING:
    from ..wasm.plugins import PluginCheck


# A phase of the reload that may last (a build, Envoy compiling a module): the CLI shows its progress.
Phase = Callable[[str], ContextManager[Any]]


def no_progress(_label: str) -> ContextManager[Any]:
    return contextlib.nullcontext()


@dataclass
class ReloadResult:
    lines: list[str] = field(default_factory=list)  # what changed, one line each
    restarted: list[str] = field(default_factory=list)
    seconds: float = 0.0
    build_seconds: float = 0.0
    state: StackState | None = None  # the stack's state as this reload left it (and saved it)

    @property
    def changed(self) -> bool:
        return bool(self.lines or self.restarted)


@dataclass
class _Swap:
    """One ECDS file being replaced, and how to put it back."""

    plugin: Plugin
    filter_name: str
    file: Swap
    old_version: str
    new_version: str
    describe: str
    baseline_rejected: int = 0
    baseline_attempts: int = 0  # Envoy's update_attempt before the swap: unchanged = the event was lost


def restart_reasons(project: Project, state: StackState) -> list[str]:
    before, now = state.restart_key, restart_key(project)
    if before is None:
        return ["the stack's state does not say how it was started"]
    reasons = []
    if before.chain != now.chain:
        reasons.append(f"the plugin chain changed ({' → '.join(before.chain or ['none'])} "
                       f"became {' → '.join(now.chain) or 'none'})")
    # Natively the taps are always in the chain: gateway.inspect is switched in place (_switch_capture).
    swapped = ("inspect",) if state.runtime == "native" else ()
    changed = sorted(k for k in now.gateway if before.gateway.get(k) != now.gateway[k] and k not in swapped)
    if changed:
        reasons.append(f"gateway settings changed ({', '.join('gateway.' + k for k in changed)})")
    if before.services != now.services:
        reasons.append("services changed (added, removed or re-pointed)")
    if before.backend_image != now.backend_image:
        reasons.append("backend.image changed")
    return reasons


def reload_stack(project: Project, *, names: tuple[str, ...] = (), build: bool = True, restart: bool = False,
                 timeout: float = 120.0, echo: Callable[[str], None] = lambda _l: None,
                 phase: Phase = no_progress) -> ReloadResult:
    """Build what is stale, then swap every changed piece in place; raise a classified error if Envoy refuses."""
    # One command at a time per stack (a watcher and a hand-run reload may overlap, or `down` may
    # start meanwhile): each one reads the live versions and writes state.json.
    with stack_lock(project.state_dir, "reload", wait=timeout, echo=echo):
        return reload_running(open_running(project), names=names, build=build, restart=restart,
                              timeout=timeout, echo=echo, phase=phase)


def reload_running(running: RunningStack, *, names: tuple[str, ...] = (), build: bool = True,
                   restart: bool = False, timeout: float = 120.0,
                   echo: Callable[[str], None] = lambda _l: None, phase: Phase = no_progress) -> ReloadResult:
    """reload_stack for a caller that holds the stack's lock and has read its state (once, under it)."""
    project, state, runtime = running.project, running.state, running.runtime
    for name in names:
        project.plugin(name)  # unknown name: a clear error before anything happens
    result = ReloadResult()
    reasons = restart_reasons(project, state)
    if reasons or restart:
        if not restart:
            raise ConfigError("this change cannot be swapped in place: " + "; ".join(reasons),
                              "run `hlocal reload --restart` (the gateway restarts; requests fail meanwhile)")
        started = time.monotonic()
        result.build_seconds = _build_stale(project, names, build, echo, phase)
        with phase(f"restarting {project.name}"):
            restarted, moved = restart_stack(runtime, project, state, timeout)
        result.state = restarted.state
        result.restarted = ["gateway", "backend"]
        result.lines.append("restarted the stack (--restart)" + (": " + "; ".join(reasons) if reasons else ""))
        result.lines += moved
        result.seconds = time.monotonic() - started
        return result

    result.build_seconds = _build_stale(project, names, build, echo, phase)
    started = time.monotonic()
    files = GatewayFiles(project.state_dir)
    files.guard()
    watched = [files.ecds(ecds_file_name(p)) for p in project.plugins if p.name in {s.name for s in state.plugins}]
    watched += [files.xds(ROUTES_FILE), files.xds(CLUSTERS_FILE)]
    for path in files.restore_missing(watched):
        result.lines.append(f"restored {path.relative_to(project.state_dir)} (it was deleted)")
    source, offset = runtime.gateway_output(project)
    try:
        with phase(f"reloading {project.name}: checking and adapting what changed"):
            swaps = _write_plugin_swaps(project, state, files, names, timeout)
            xds_changed = [] if names else _write_xds(project, state, files, timeout)
        if swaps or xds_changed:
            with phase(f"reloading {project.name}: {_awaited(swaps)}"):
                result.lines += _wait_live(project, state, files, swaps, xds_changed, source, offset, timeout)
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM) or refused: the accepted files go back, so what Envoy ends up
        # serving is what state.json (not yet rewritten) records.
        files.roll_back(list(files.pending))
        raise
    files.commit()
    if not names:
        result.lines += [line for line in (_update_stubs(project, state, files),
                                           *_update_service_stubs(project, state, files)) if line]
    result.seconds = time.monotonic() - started
    for swap in swaps:
        result.lines.append(f"plugin {swap.plugin.name}: {swap.describe}, live in {result.seconds:.2f} s")
    for xds in xds_changed:
        result.lines.append(f"{xds.what} reloaded in {result.seconds:.2f} s")
    result.lines += _switch_capture(project, state)
    files.remove_unreferenced_modules()
    state.restart_key = restart_key(project)  # gateway.inspect's new value is the one running
    state.save(project.state_dir)
    result.state = state
    return result


def _switch_capture(project: Project, state: StackState) -> list[str]:
    """gateway.inspect changed: the collector attaches to the taps or detaches (native runtime)."""
    layout = state.require_layout()
    if state.runtime != "native" or not layout.inspect_dir:
        return []
    on = project.gateway.captures(state.runtime)
    if not switch_capture(project.state_dir / "inspect", on):
        return []
    return ["request capture on (gateway.inspect): `hlocal inspect` lists what comes next" if on
            else "request capture off (gateway.inspect: false); what was captured stays listed"]


def _awaited(swaps: list[_Swap]) -> str:
    """What the swap waits for: Envoy compiling new modules takes seconds (V8, per megabyte)."""
    compiling = [s.plugin.name for s in swaps if s.describe.startswith("module")]
    if compiling:
        return f"Envoy is compiling plugin{'s' if len(compiling) > 1 else ''} {', '.join(compiling)}"
    return "Envoy is applying the new configuration"


def _build_stale(project: Project, names: tuple[str, ...], build: bool, echo: Callable[[str], None],
                 phase: Phase = no_progress) -> float:
    if not build:
        return 0.0
    total = 0.0
    for plugin in project.plugins:
        if (not names or plugin.name in names) and needs_build(plugin):
            try:
                with phase(f"building {plugin.name}"):
                    done = build_plugin(plugin, echo=echo)
            except PluginError as exc:
                exc.hint = f"{exc.hint}; the running version still serves" if exc.hint else "the running version still serves"
                raise
            total += done.seconds
    return total


def _write_plugin_swaps(project: Project, state: StackState, files: GatewayFiles, names: tuple[str, ...],
                        timeout: float) -> list[_Swap]:
    """Check every changed plugin first (nothing is touched if one is bad), then replace their ECDS files."""
    current = {p.name: p for p in state.plugins}
    layout = state.require_layout()
    pending = []  # (plugin, check or None when only the config changed, state before)
    for plugin in project.plugins:
        if names and plugin.name not in names:
            continue
        before = current[plugin.name]
        if before.source_stat and source_stat(plugin.wasm) == before.source_stat:
            # The module file is untouched since it was checked: only the config can have changed,
            # and there is no need to read, inspect and adapt megabytes again.
            if version_of(before.served_sha256, plugin) != before.version:
                pending.append((plugin, None, before))
            continue
        # Imported on use: a config-only reload (the common, latency-sensitive case) never inspects a module.

        check = check_plugin(plugin, state.flavor, project.gateway)
        require_runnable(CheckReport(flavor=state.flavor, plugins=[check]))
        prepare(check, state.flavor, project.gateway.wasm_log_level,
                upstream_table(project.services, layout.replicas),
                project.gateway.connection_buffer_limits)
        if ecds_version(check) != before.version:
            pending.append((plugin, check, before))
    stats = _admin(lambda: ecds_stats(state.admin_url), timeout) if pending else {}
    swaps = []
    modules = dict(layout.modules)
    for plugin, check, before in pending:
        if check is None:
            gateway_path, new_version, describe = modules[plugin.name], version_of(before.served_sha256, plugin), "config changed"
            new_state = dataclasses.replace(before, version=new_version, config_sha256=config_sha256(plugin))
        else:
            staged = files.put_module(check.staged_name(), check.served)
            gateway_path = f"{Path(modules[plugin.name]).parent}/{staged.name}"
            new_version, describe = ecds_version(check), _describe(before, check)
            new_state = plugin_state(check, gateway_path)
        modules[plugin.name] = gateway_path
        plugin_layout = dataclasses.replace(layout, modules=dict(modules))
        filter_name = plugin_filter_name(plugin)
        text = json.dumps(render_ecds(plugin, plugin_layout, new_version), indent=2)
        baseline = int(stats.get(filter_name, {}).get("update_rejected", "0"))
        attempts = int(stats.get(filter_name, {}).get("update_attempt", "0"))
        written = files.swap(files.ecds(ecds_file_name(plugin)), text)
        if written is None:
            continue
        swaps.append(_Swap(plugin=plugin, filter_name=filter_name, file=written, old_version=before.version,
                           new_version=new_version, describe=describe, baseline_rejected=baseline,
                           baseline_attempts=attempts))
        state.plugins = [new_state if p.name == plugin.name else p for p in state.plugins]
    state.layout = dataclasses.replace(layout, modules=modules)
    return swaps


def _admin(read: Callable[[], Any], timeout: float) -> Any:
    """An admin API read that waits out a busy Envoy: its main thread answers admin requests and
    is blocked while it compiles a module (seconds, for a large plugin under load)."""
    return Deadline(timeout=timeout, interval=0.1).until(
        read, what="the gateway's admin API to answer (is it compiling a module?)", hint="see `hlocal status`")


def _describe(before: PluginState, check: PluginCheck) -> str:
    parts = []
    if before.served_sha256 != check.served_sha256:
        parts.append(f"module {before.sha256[:12]} → {check.info.sha256[:12]}")
    if before.config_sha256 != config_sha256(check.plugin):
        parts.append("config changed")
    return ", ".join(parts) or "reloaded"


@dataclass
class _XdsSwap:
    name: str  # routes.json or clusters.json
    file: Swap
    new_version: str
    baseline_rejected: int

    @property
    def what(self) -> str:
        return "routes" if self.name == ROUTES_FILE else "clusters"


def _write_xds(project: Project, state: StackState, files: GatewayFiles, timeout: float) -> list[_XdsSwap]:
    """Rewrite the route/cluster files whose content changed."""
    swaps = []
    for name, doc in xds_documents(project, state.require_layout()).items():
        path = files.xds(name)
        text = json.dumps(doc, indent=2)
        if files.read_text(path) == text:
            continue
        prefix = RDS_STAT_PREFIX if name == ROUTES_FILE else CDS_STAT_PREFIX
        stats = _admin(lambda: xds_stats(state.admin_url, prefix), timeout)
        written = files.swap(path, text)
        if written is not None:
            swaps.append(_XdsSwap(name, written, doc["version_info"], int(stats.get("update_rejected", "0"))))
    return swaps


def _wait_live(project: Project, state: StackState, files: GatewayFiles, swaps: list[_Swap],
               xds_changed: list[_XdsSwap], source: Any, offset: int, timeout: float) -> list[str]:
    """Until every swap is live; a rejection restores the old files and raises the classified cause.
    Returns what was re-delivered (a swap whose change event never reached Envoy: redeliver.py)."""
    watch = LogWatch(source, [s.plugin.name for s in swaps], start=offset, where=str(project.state_dir))
    redelivery = Redelivery()

    def check() -> None:
        stats = ecds_stats(state.admin_url)
        pending = []
        for swap in swaps:
            seen = stats.get(swap.filter_name, {})
            if seen.get("version_text") == swap.new_version:
                continue
            if int(seen.get("update_rejected", "0")) > swap.baseline_rejected:
                raise _Rejected(swap)
            redelivery.check(f"plugin {swap.plugin.name}", swap.file.path, swap.baseline_attempts, seen)
            pending.append(swap.plugin.name)
        for xds in xds_changed:
            seen = xds_stats(state.admin_url, RDS_STAT_PREFIX if xds.name == ROUTES_FILE else CDS_STAT_PREFIX)
            if seen.get("version_text") == xds.new_version:
                continue
            if int(seen.get("update_rejected", "0")) > xds.baseline_rejected:
                raise _Rejected(xds)
            pending.append(xds.what)
        if pending:
            raise NotYet(f"not live yet: {', '.join(pending)}")

    try:
        Deadline(timeout=timeout, interval=0.02).until(check, what="the new configuration to go live",
                                                       hint="see `hlocal logs gateway`")
    except _Rejected as rejected:
        # Put every file back: a rejected file would be retried whenever the directory changes again.
        files.roll_back([other.file for other in [*swaps, *xds_changed]])
        swap = rejected.swap
        if isinstance(swap, _XdsSwap):
            raise EnvironmentProblem(f"Envoy rejected the new {swap.what}: {_last_warning(watch)}; "
                                     "the previous ones still serve", "see `hlocal logs gateway`") from None
        cause = _cause(watch, swap)
        still = _admin(lambda: ecds_stats(state.admin_url), timeout).get(swap.filter_name, {}).get("version_text")
        serving = ("the previous version still serves" if still == swap.old_version
                   else f"Envoy now reports version {still!r} for it")
        cause.message = f"{cause.message}; {serving}"
        raise cause from None
    return redelivery.lines()


def _last_warning(watch: Any) -> str:
    watch.poll()
    found = [line for line in watch.lines if "rejected" in line or "[error]" in line]
    return found[-1].split("] ")[-1].strip() if found else "(nothing logged)"


class _Rejected(Exception):
    def __init__(self, swap: "_Swap | _XdsSwap") -> None:
        super().__init__(str(swap.file.path))
        self.swap = swap


def _cause(watch: Any, swap: _Swap) -> HlocalError:
    """The classified reason from the gateway's output since the reload began (it may lag a little)."""

    def logged() -> HlocalError:
        error = watch.failure()
        if error is None:
            raise NotYet("no cause logged yet")
        return error

    try:
        return Deadline(timeout=2.0, interval=0.05).until(logged, what="Envoy's reason for the rejection")
    except WaitTimeout:
        return PluginError(f"Envoy rejected the new version of plugin {swap.plugin.name!r}",
                           "see `hlocal logs gateway`")


def _update_stubs(project: Project, state: StackState, files: GatewayFiles) -> str | None:
    before = files.read_stubs(files.backend_config)
    wanted = list(project.backend.stubs)
    if before == wanted:
        return None

    try:
        MockClient(state.control_url, token=state.control_token).set_stubs(wanted)
    except MockClientError as exc:
        raise EnvironmentProblem(f"cannot update the backend's stubs: {exc}", "see `hlocal status`") from exc
    files.write_stubs(files.backend_config, wanted)
    return f"backend stubs updated ({len(wanted)} stub{'s' if len(wanted) != 1 else ''}; no restart)"


def _update_service_stubs(project: Project, state: StackState, files: GatewayFiles) -> list[str]:
    """A service mock's stubs change in place too (adding or removing a service needs --restart)."""
    lines = []
    for service in project.services:
        plan = state.services.get(service.name)
        path = files.service_config(service.name)
        if plan is None or not plan.journals():
            continue
        wanted = list(service.stubs)
        if files.read_stubs(path) == wanted:
            continue

        try:
            for url in plan.journals().values():  # the mock, or every replica of it
                MockClient(url, token=state.control_token).set_stubs(wanted)
        except MockClientError as exc:
            raise EnvironmentProblem(f"cannot update the stubs of service {service.name}: {exc}",
                                     "see `hlocal status`") from exc
        files.write_stubs(path, wanted)
        lines.append(f"service {service.name} stubs updated ({len(wanted)} stub{'s' if len(wanted) != 1 else ''}; no restart)")
    return lines
