"""What one request caused besides its response: plugin log lines, calls to services, and why a call failed."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from ..gatewaylog.classify import LogWatch, plugin_traps
from ..config.project import Project
from ..gatewaylog.logs import PLUGIN_LINE, is_plugin_line, reassemble, short_plugin_line
from ..mock.client import MockClient, MockClientError
from ..runtime import runtime_for_state
from ..state import StackState
from ..errors import WaitTimeout
from ..system.readiness import admin_stats

# wasm-go and raw proxy-wasm plugins report a call to an unknown cluster as BadArgument / "bad argument"
# (proxy-wasm-go-sdk types.ErrorStatusBadArgument: "error status returned by host: bad argument").
# Other host functions answer BadArgument too (e.g. ReplaceHttpResponseHeaders before the response
# exists), so a missing cluster is only blamed when the line is about a call: it names a cluster, or
# says call/dispatch/cluster as wasm-go plugins do ("failed to call ... cluster: ...").
BAD_ARGUMENT = re.compile(r"bad[ _]?argument", re.IGNORECASE)
CLUSTER_NAME = re.compile(r"outbound\|\d+\|[^|\s]*\|[^\s\"',;)]+")
CALL_WORDS = re.compile(r"\b(call(s|ing|ed)?|dispatch\w*|cluster|httpcall)\b", re.IGNORECASE)
# Envoy's log level field: "[2026-..][12][critical][wasm] ..."
LEVEL = re.compile(r"\]\[(?P<level>trace|debug|info|warning|error|critical)\]\[")


@dataclass
class Effects:
    plugin_lines: list[str] = field(default_factory=list)
    service_calls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _control(url: str, state: StackState) -> MockClient:
    return MockClient(url, token=state.control_token)


def _timeouts(state: StackState) -> dict[str, int]:
    """upstream_rq_timeout per service cluster (a plugin's call that ran out of time counts there)."""
    clusters = {plan.cluster: name for name, plan in state.services.items()}
    if not clusters:
        return {}
    try:
        stats = admin_stats(state.admin_url, r"^cluster\.outbound\|.*\.upstream_rq_timeout$")
    except OSError:
        return {}
    out = {}
    for stat, value in stats.items():
        cluster = stat[len("cluster."):-len(".upstream_rq_timeout")]
        if cluster in clusters:
            out[clusters[cluster]] = int(value or 0)
    return out


class Observation:
    """Positions taken before a request; `finish()` reads what changed after it."""

    def __init__(self, project: Project, state: StackState) -> None:
        self.project, self.state = project, state
        self.source, self.offset = runtime_for_state(project, None).gateway_output(project)
        self.seqs: dict[str, int] = {}
        self.controls = {label: url for plan in state.services.values() for label, url in plan.journals().items()}
        for label, url in self.controls.items():  # a service's mock, or each replica's (`name[i]`)
            try:
                self.seqs[label] = _control(url, state).last_seq()
            except MockClientError:
                pass
        self.timeouts = _timeouts(state)

    def finish(self) -> Effects:
        watch = LogWatch(self.source, [], start=self.offset)
        watch.poll()
        effects = Effects(plugin_lines=[line for line in reassemble(watch.lines) if is_plugin_line(line)])
        for name, seq in self.seqs.items():
            try:
                calls = _control(self.controls[name], self.state).journal(since=seq)
            except MockClientError:
                continue
            if calls:
                effects.service_calls[name] = calls
        effects.notes = explain(self.project, self.state, effects.plugin_lines, self.timeouts, _timeouts(self.state))
        effects.notes += [crash_note(self.project, plugin, trap.summary())
                          for plugin, trap in plugin_traps(watch.lines, [p.name for p in self.state.plugins])]
        return effects


def explain(project: Project, state: StackState, plugin_lines: list[str], before: dict[str, int],
            after: dict[str, int]) -> list[str]:
    """Name the cluster behind a BadArgument and the service behind a timeout."""
    declared = {plan.cluster: name for name, plan in state.services.items()}
    notes = []
    for line in plugin_lines:
        if not BAD_ARGUMENT.search(line):
            continue
        asked = CLUSTER_NAME.search(line)
        known = "; ".join(f"{name} → {cluster}" for cluster, name in declared.items()) or "none (add services:)"
        if asked and asked.group(0) not in declared and asked.group(0) != "outbound|80||backend":
            close = difflib.get_close_matches(asked.group(0), list(declared), n=1, cutoff=0.5)
            maybe = f"; did you mean {close[0]} ({declared[close[0]]})?" if close else ""
            notes.append(f"the plugin called cluster {asked.group(0)!r}, which does not exist here, so the call "
                         f"failed with BadArgument; declared services: {known}{maybe}")
        elif not asked and CALL_WORDS.search(_message(line)):
            notes.append(f"a plugin call failed with BadArgument, which usually means its cluster does not exist; "
                         f"declared services: {known}")
        elif not asked:
            notes.append(f"a host function refused a plugin's arguments (BadArgument): {_message(line)!r}; the line "
                         f"names no outbound call, so this is not about a missing cluster (e.g. a header or body "
                         f"change made in a phase where that map does not exist yet)")
    for name, count in after.items():
        if count > before.get(name, 0):
            service = next((s for s in project.services if s.name == name), None)
            cluster = state.services[name].cluster
            limit = f"; its timeout_ms is {service.timeout_ms}" if service and service.timeout_ms else ""
            delay = _stub_delay(service)
            slow = f"; its mock delays some answers by up to {delay} ms" if delay else ""
            notes.append(f"a call to service {name} ({cluster}) timed out (Envoy counted "
                         f"{count - before.get(name, 0)} upstream_rq_timeout){limit}{slow}; the plugin sets the "
                         f"call's own timeout")
    return notes


def _stub_delay(service: Any) -> int:
    if service is None:
        return 0
    return max((int((stub.get("respond") or {}).get("delay_ms") or 0) for stub in service.stubs), default=0)


def _message(line: str) -> str:
    """`plugin: what it said`, without Envoy's prefix and wasm-go's."""
    return short_plugin_line(line) or line.split("wasm log ", 1)[-1]


# wasm-go's "[plugin] [trace id] [request id] ": a real request id says the line was logged for a request.
_REQUEST_ID = re.compile(r"^\[[^\]]+\] \[[^\]]*\] \[(?!nil\])[^\]]+\] ")


def _during_request(line: str) -> bool:
    match = PLUGIN_LINE.search(line)
    return match is not None and _REQUEST_ID.match(match.group("message")) is not None


def level_of(line: str) -> str | None:
    match = LEVEL.search(line)
    return match.group("level") if match else None


def startup_warnings(lines: list[str]) -> list[str]:
    """The plugin lines logged at error or critical level while the gateway started (e.g. a plugin
    that rejected its configuration and fell back to deny-all): `up` shows them, `up --strict` fails."""
    out = []
    for line in reassemble(lines):  # a Go panic's fragments as one; a request's lines are not the start's
        if is_plugin_line(line) and level_of(line) in ("error", "critical") and not _during_request(line):
            out.append(f"{level_of(line)}: {_message(line)}")
    return out


def no_response(exchange: Any, timeout: float, observation: "Observation | None") -> WaitTimeout:
    """The gateway took the request and never answered: say so, with what the plugins logged last."""
    what = f"{exchange.method} {exchange.path}"
    message = f"the gateway accepted {what} but no response came within {timeout:g} s"
    if observation is None:
        return WaitTimeout(message, "a plugin may have paused the request and never resumed it; "
                                    "`hlocal logs --plugin` shows what the plugins logged")
    effects = observation.finish()
    last = effects.plugin_lines[-8:]
    if last:
        message += "; the plugins' last log lines:\n" + "\n".join(f"  {_message(line)}" for line in last)
    for note in effects.notes:
        message += f"\nnote: {note}"
    return WaitTimeout(message, "a plugin paused the request (ActionPause / StopIteration) and did not resume it "
                                "or send a response, e.g. after a failed call: resume or answer on every path")


_AFTER_TRAP = {
    "FAIL_RELOAD": "the next request gets a fresh VM, as on Higress (failure_policy FAIL_RELOAD)",
    "FAIL_CLOSED": "its requests get 503 until `hlocal reload` (failure_policy FAIL_CLOSED)",
    "FAIL_OPEN": "requests skip it until `hlocal reload` (failure_policy FAIL_OPEN)",
}


def crash_note(project: Project, plugin: str | None, what: str) -> str:
    """What a VM trap means for the requests after it, by the plugin's failure_policy."""
    policy = next((p.failure_policy for p in project.plugins if p.name == plugin), None)
    after = f"; {_AFTER_TRAP[policy]}" if policy in _AFTER_TRAP else ""
    return f"plugin {plugin or '(one of the plugins)'} crashed: its VM trapped: {what}{after}"


def plugin_crashes_of(project: Project, runtime: Any = None) -> dict[str, list[str]]:
    """The VM traps of the running gateway so far, by plugin ("" when it cannot be told), as summaries
    (`runtime`: the one that started the stack, as the caller already knows it)."""
    source, _ = (runtime or runtime_for_state(project, None)).gateway_output(project)
    watch = LogWatch(source, [], start=0)
    watch.poll()
    crashes: dict[str, list[str]] = {}
    for plugin, trap in plugin_traps(watch.lines, [p.name for p in project.plugins]):
        crashes.setdefault(plugin or "", []).append(trap.summary())
    return crashes


def startup_warnings_of(project: Project) -> list[str]:
    """startup_warnings() over everything the running gateway has written so far (call it right
    after `up` returned, when that is the start)."""
    source, _ = runtime_for_state(project, None).gateway_output(project)
    watch = LogWatch(source, [], start=0)
    watch.poll()
    return startup_warnings(watch.lines)
