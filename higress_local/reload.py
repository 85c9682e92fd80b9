"""`hlocal reload`: swap new modules, plugin configs, routes and stubs into the running gateway in place.

Plugins are ECDS resources read from watched files: replacing a file by rename makes Envoy build
the new filter config while the old one keeps serving, and switch only when it is valid. Routes
and clusters are RDS/CDS files handled the same way; stubs go to the mock's control API.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .config import Plugin, Project
from .errors import ConfigError, EnvironmentProblem, HlocalError, PluginError, WaitTimeout
from .plugins import check_plugin, prepare, require_runnable, stage, CheckReport
from .render.envoy import CLUSTERS_FILE, ROUTES_FILE, Layout, ecds_file_name, plugin_filter_name, render_ecds
from .state import StackState
from .wait import Deadline, NotYet


@dataclass
class ReloadResult:
    lines: list[str] = field(default_factory=list)  # what changed, one line each
    restarted: list[str] = field(default_factory=list)
    seconds: float = 0.0
    build_seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return bool(self.lines or self.restarted)


@dataclass
class _Swap:
    """One ECDS file being replaced, and how to put it back."""

    plugin: Plugin
    filter_name: str
    path: Path
    old_text: str
    old_version: str
    new_version: str
    describe: str
    baseline_rejected: int = 0


def restart_reasons(project: Project, state: StackState) -> list[str]:
    from .runtime.stage import restart_key

    before, now = state.extra.get("restart_key") or {}, restart_key(project)
    reasons = []
    if before.get("chain") != now["chain"]:
        reasons.append(f"the plugin chain changed ({' → '.join(before.get('chain') or ['none'])} "
                       f"became {' → '.join(now['chain']) or 'none'})")
    if before.get("gateway") != now["gateway"]:
        changed = sorted(k for k in now["gateway"] if (before.get("gateway") or {}).get(k) != now["gateway"][k])
        reasons.append(f"gateway settings changed ({', '.join('gateway.' + k for k in changed)})")
    if before.get("backend_image") != now["backend_image"]:
        reasons.append("backend.image changed")
    return reasons


def reload_stack(project: Project, *, names: tuple[str, ...] = (), build: bool = True, restart: bool = False,
                 timeout: float = 120.0, echo: Callable[[str], None] = lambda _l: None) -> ReloadResult:
    """Build what is stale, then swap every changed piece in place; raise a classified error if Envoy refuses."""
    import fcntl

    # One reload at a time per stack (a watcher and a hand-run reload may overlap): each one reads
    # the live versions and writes state.json, so they must not interleave.
    project.state_dir.mkdir(parents=True, exist_ok=True)
    with open(project.state_dir / "reload.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _reload(project, names=names, build=build, restart=restart, timeout=timeout, echo=echo)


def _reload(project: Project, *, names: tuple[str, ...], build: bool, restart: bool, timeout: float,
            echo: Callable[[str], None]) -> ReloadResult:
    from .runtime import require_running, runtime_for_state

    state = require_running(project)
    runtime = runtime_for_state(project, None)
    for name in names:
        project.plugin(name)  # unknown name: a clear error before anything happens
    result = ReloadResult()
    reasons = restart_reasons(project, state)
    if reasons or restart:
        if not restart:
            raise ConfigError("this change cannot be swapped in place: " + "; ".join(reasons),
                              "run `hlocal reload --restart` (the gateway restarts; requests fail meanwhile)")
        started = time.monotonic()
        result.build_seconds = _build_stale(project, names, build, echo)
        runtime.restart_gateway(project, timeout)
        result.restarted = ["gateway", "backend"]
        result.lines.append("restarted the stack (--restart)" + (": " + "; ".join(reasons) if reasons else ""))
        result.seconds = time.monotonic() - started
        return result

    result.build_seconds = _build_stale(project, names, build, echo)
    started = time.monotonic()
    layout = Layout(**state.extra["layout"])
    source, offset = runtime.gateway_output(project)
    swaps = _write_plugin_swaps(project, state, layout, names)
    xds_changed = [] if names else _write_xds(project, layout, state)
    if swaps or xds_changed:
        _wait_live(project, state, swaps, xds_changed, source, offset, timeout)
    if not names:
        result.lines += [line for line in (_update_stubs(project, state), *_update_service_stubs(project, state))
                         if line]
    result.seconds = time.monotonic() - started
    for swap in swaps:
        result.lines.append(f"plugin {swap.plugin.name}: {swap.describe}, live in {result.seconds:.2f} s")
    for xds in xds_changed:
        result.lines.append(f"{xds.what} reloaded in {result.seconds:.2f} s")
    _remove_unreferenced_modules(project.state_dir)
    state.save(project.state_dir)
    return result


def _build_stale(project: Project, names: tuple[str, ...], build: bool, echo: Callable[[str], None]) -> float:
    from .build import build_plugin, needs_build

    if not build:
        return 0.0
    total = 0.0
    for plugin in project.plugins:
        if (not names or plugin.name in names) and needs_build(plugin):
            try:
                done = build_plugin(plugin, echo=echo)
            except PluginError as exc:
                exc.hint = f"{exc.hint}; the running version still serves" if exc.hint else "the running version still serves"
                raise
            total += done.seconds
    return total


def _write_plugin_swaps(project: Project, state: StackState, layout: Layout, names: tuple[str, ...]) -> list[_Swap]:
    """Check every changed plugin first (nothing is touched if one is bad), then replace their ECDS files."""
    import dataclasses

    from .runtime.stage import config_sha256, ecds_version, plugin_state, source_stat, version_of, write_atomic

    current = {p.name: p for p in state.plugins}
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
        check = check_plugin(plugin, state.flavor)
        require_runnable(CheckReport(flavor=state.flavor, plugins=[check]))
        prepare(check, state.flavor)
        if ecds_version(check) != before.version:
            pending.append((plugin, check, before))
    from .readiness import ecds_stats

    stats = _admin(lambda: ecds_stats(state.admin_url)) if pending else {}
    swaps = []
    for plugin, check, before in pending:
        if check is None:
            gateway_path, new_version, describe = layout.modules[plugin.name], version_of(before.served_sha256, plugin), "config changed"
            new_state = dataclasses.replace(before, version=new_version, config_sha256=config_sha256(plugin))
        else:
            staged = stage(check, project.state_dir / "modules")
            gateway_path = f"{Path(layout.modules[plugin.name]).parent}/{staged.name}"
            new_version, describe = ecds_version(check), _describe(before, check)
            new_state = plugin_state(check, gateway_path)
        plugin_layout = Layout(**{**state.extra["layout"], "modules": {**layout.modules, plugin.name: gateway_path}})
        path = project.state_dir / "ecds" / ecds_file_name(plugin)
        filter_name = plugin_filter_name(plugin)
        swap = _Swap(plugin=plugin, filter_name=filter_name, path=path, old_text=path.read_text(),
                     old_version=before.version, new_version=new_version, describe=describe,
                     baseline_rejected=int(stats.get(filter_name, {}).get("update_rejected", "0")))
        write_atomic(path, json.dumps(render_ecds(plugin, plugin_layout, swap.new_version), indent=2))
        swaps.append(swap)
        layout.modules[plugin.name] = gateway_path
        state.plugins = [new_state if p.name == plugin.name else p for p in state.plugins]
    state.extra["layout"]["modules"] = dict(layout.modules)
    return swaps


def _admin(read: Callable[[], Any], timeout: float = 120.0) -> Any:
    """An admin API read that waits out a busy Envoy: its main thread answers admin requests and
    is blocked while it compiles a module (seconds, for a large plugin under load)."""
    return Deadline(timeout=timeout, interval=0.1).until(
        read, what="the gateway's admin API to answer (is it compiling a module?)", hint="see `hlocal status`")


def _describe(before: Any, check: Any) -> str:
    from .render.envoy import plugin_configuration_json
    import hashlib

    parts = []
    if before.served_sha256 != check.served_sha256:
        parts.append(f"module {before.sha256[:12]} → {check.info.sha256[:12]}")
    config_sha = hashlib.sha256(plugin_configuration_json(check.plugin).encode()).hexdigest()
    if before.config_sha256 != config_sha:
        parts.append("config changed")
    return ", ".join(parts) or "reloaded"


@dataclass
class _XdsSwap:
    name: str  # routes.json or clusters.json
    path: Path
    old_text: str
    new_version: str
    baseline_rejected: int

    @property
    def what(self) -> str:
        return "routes" if self.name == ROUTES_FILE else "clusters"


def _write_xds(project: Project, layout: Layout, state: StackState) -> list[_XdsSwap]:
    """Rewrite the route/cluster files whose content changed."""
    from .readiness import CDS_STAT_PREFIX, RDS_STAT_PREFIX, xds_stats
    from .runtime.stage import write_atomic, xds_documents

    swaps = []
    for name, doc in xds_documents(project, layout).items():
        path = project.state_dir / "xds" / name
        text = json.dumps(doc, indent=2)
        old_text = path.read_text() if path.exists() else ""
        if old_text == text:
            continue
        prefix = RDS_STAT_PREFIX if name == ROUTES_FILE else CDS_STAT_PREFIX
        stats = _admin(lambda: xds_stats(state.admin_url, prefix))
        swaps.append(_XdsSwap(name, path, old_text, doc["version_info"], int(stats.get("update_rejected", "0"))))
        write_atomic(path, text)
    return swaps


def _wait_live(project: Project, state: StackState, swaps: list[_Swap], xds_changed: list[_XdsSwap],
               source: Any, offset: int, timeout: float) -> None:
    """Until every swap is live; a rejection restores the old files and raises the classified cause."""
    from .classify import LogWatch
    from .readiness import CDS_STAT_PREFIX, RDS_STAT_PREFIX, ecds_stats, xds_stats
    from .runtime.stage import write_atomic

    watch = LogWatch(source, [s.plugin.name for s in swaps], start=offset, where=str(project.state_dir))

    def check() -> None:
        stats = ecds_stats(state.admin_url)
        pending = []
        for swap in swaps:
            seen = stats.get(swap.filter_name, {})
            if seen.get("version_text") == swap.new_version:
                continue
            if int(seen.get("update_rejected", "0")) > swap.baseline_rejected:
                raise _Rejected(swap)
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
        for other in [*swaps, *xds_changed]:
            write_atomic(other.path, other.old_text)
        _remove_unreferenced_modules(project.state_dir)
        swap = rejected.swap
        if isinstance(swap, _XdsSwap):
            raise EnvironmentProblem(f"Envoy rejected the new {swap.what}: {_last_warning(watch)}; "
                                     "the previous ones still serve", "see `hlocal logs gateway`") from None
        cause = _cause(watch, swap)
        still = _admin(lambda: ecds_stats(state.admin_url)).get(swap.filter_name, {}).get("version_text")
        serving = ("the previous version still serves" if still == swap.old_version
                   else f"Envoy now reports version {still!r} for it")
        cause.message = f"{cause.message}; {serving}"
        raise cause from None


def _last_warning(watch: Any) -> str:
    watch.poll()
    found = [line for line in watch.lines if "rejected" in line or "[error]" in line]
    return found[-1].split("] ")[-1].strip() if found else "(nothing logged)"


class _Rejected(Exception):
    def __init__(self, swap: "_Swap | _XdsSwap") -> None:
        super().__init__(str(swap.path))
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


def _update_stubs(project: Project, state: StackState) -> str | None:
    path = project.state_dir / "backend.json"
    try:
        before = json.loads(path.read_text()).get("stubs", [])
    except (OSError, ValueError):
        before = None
    wanted = list(project.backend.stubs)
    if before == wanted:
        return None
    from .mock.client import MockClient, MockClientError
    from .runtime.stage import write_backend_config

    try:
        MockClient(state.control_url).set_stubs(wanted)
    except MockClientError as exc:
        raise EnvironmentProblem(f"cannot update the backend's stubs: {exc}", "see `hlocal status`") from exc
    write_backend_config(project, project.state_dir)
    return f"backend stubs updated ({len(wanted)} stub{'s' if len(wanted) != 1 else ''}; no restart)"


def _update_service_stubs(project: Project, state: StackState) -> list[str]:
    """A service mock's stubs change in place too (adding or removing a service needs --restart)."""
    from .runtime.stage import write_atomic

    lines = []
    for service in project.services:
        doc = (state.extra.get("services") or {}).get(service.name) or {}
        path = project.state_dir / "services" / f"{service.name}.json"
        if not doc.get("control_port") or not path.exists():
            continue
        wanted = list(service.stubs)
        if json.loads(path.read_text()).get("stubs", []) == wanted:
            continue
        from .mock.client import MockClient, MockClientError

        try:
            MockClient(f"http://127.0.0.1:{doc['control_port']}").set_stubs(wanted)
        except MockClientError as exc:
            raise EnvironmentProblem(f"cannot update the stubs of service {service.name}: {exc}",
                                     "see `hlocal status`") from exc
        write_atomic(path, json.dumps({"stubs": wanted}, indent=2))
        lines.append(f"service {service.name} stubs updated ({len(wanted)} stub{'s' if len(wanted) != 1 else ''}; no restart)")
    return lines


def _remove_unreferenced_modules(state_dir: Path) -> list[str]:
    """Module copies no ECDS file points at any more (the bridge is never removed)."""
    from .runtime.stage import BRIDGE_NAME

    referenced = {BRIDGE_NAME}
    for ecds in (state_dir / "ecds").glob("*.json"):
        try:
            doc = json.loads(ecds.read_text())
        except (OSError, ValueError):
            continue
        for resource in doc.get("resources", []):
            filename = resource["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
            referenced.add(Path(filename).name)
    removed = []
    for module in (state_dir / "modules").glob("*.wasm"):
        if module.name not in referenced:
            module.unlink()
            removed.append(module.name)
    return removed
