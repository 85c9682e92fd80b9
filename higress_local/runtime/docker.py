"""The docker runtime: a generated Compose stack (gateway image + mock backend) driven by `docker compose`."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Any, Iterator

from ..agent.control import stop_agent
from . import images as imagelib
from ..config.project import Project
from ..errors import CommandFailed, EnvironmentProblem, PortInUse
from ..system.proc import run, stream
from ..render.compose import ADMIN_PORT, CONTROL_PORT, GATEWAY_PORT, TLS_PORT, project_name
from ..state import ComponentState, StackState, StateRead
from ..system.wait import Deadline, NotYet
from . import stage as staging
from .base import ComponentStatus, Runtime, StackStatus
from ..system.dockerenv import ImageNeed, compose_version, docker_cli, docker_client, ensure_images
from .dockerplan import COMPOSE_FILE, plan_docker, service_images
from .files import GatewayFiles
from .services import replica_control_port
from .hostprocs import component_status, process_record, spawn_component, stop_components
from ..inspect.wiring import COMPONENT as INSPECTOR, collector_argv
from ..system.orphans import stop_marked
from ..gatewaylog.classify import classify_lines
from ..gatewaylog.logs import LogLine, LogView, follow_files

# Envoy's own log lines (its default --log-format "[%Y-%m-%d %T.%e][%t][%l][%n] ..."), plugins' included.
ENVOY_LOG_LINE = re.compile(r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\]\[")
# gateway.inspect: processes on this machine beside the compose stack, in start order. `docker logs
# --follow` copies the gateway container's output (Envoy's log and the access log) into
# logs/gateway-output.log, which the collector reads as native's collector reads gateway.log.
GATEWAY_OUTPUT = "gateway-output"
HOST_COMPONENTS = (GATEWAY_OUTPUT, INSPECTOR)


def stack_services(state: StackState | None) -> tuple[str, ...]:
    """Compose services of the stack in start order: backend, services, gateway."""
    extra = [name for plan in (state.services.values() if state else []) if plan.how != "url"
             for name in plan.components()]
    return ("backend", *extra, "gateway")


class DockerRuntime(Runtime):
    """Runs the stack with Docker Compose; `status` reads containers through the Docker SDK."""

    name = "docker"
    _client: Any = None  # the Docker SDK client of one `up` (set by _preflight)

    # -- compose -----------------------------------------------------------
    def _compose(self, project: Project, *args: str, timeout: float = 300.0):
        compose_file = project.state_dir / COMPOSE_FILE
        target = ["-f", str(compose_file)] if compose_file.exists() else ["-p", project_name(project)]
        return run([docker_cli(), "compose", *target, *args], timeout=timeout)

    def _containers(self, client: Any, project: Project) -> dict[str, Any]:
        found = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project_name(project)}"})
        return {c.labels.get("com.docker.compose.service", c.name): c for c in found}

    # -- up ----------------------------------------------------------------
    # -- the hooks of Runtime.up -------------------------------------------
    def _preflight(self, project: Project) -> str:
        self._client = docker_client()  # the engine answers (kept for the steps of this `up`)
        compose_version()
        return project.gateway.flavor or "higress"

    def _running(self, project: Project, state: StackState) -> bool:
        return _all_running(self._containers(self._client, project), state) and all(
            (record := process_record(c)) is not None and record.alive() for c in _host_components(state))

    def _clear(self, project: Project, existing: StackState | None) -> None:
        _stop_host(project, existing)
        if existing is not None or self._containers(self._client, project):
            self._compose(project, "down", "--volumes", "--remove-orphans")  # stale or --recreate
            StackState.remove(project.state_dir)

    def _plan(self, project: Project, flavor: str) -> staging.Plan:
        ensure_images(self._client, [
            ImageNeed(imagelib.gateway_image(project, flavor), imagelib.image_source(project, flavor, "gateway"),
                      f"gateway.image (or ${imagelib.ENV_HIGRESS if flavor == 'higress' else imagelib.ENV_ENVOY})"),
            ImageNeed(imagelib.backend_image(project), imagelib.image_source(project, flavor, "backend"),
                      f"backend.image (or ${imagelib.ENV_BACKEND})"),
            *service_images(project),
        ])
        return plan_docker(project, flavor)

    def _launch(self, project: Project, plan: staging.Plan, timeout: float) -> list[str]:
        client, state = self._client, plan.state
        self._start(project, state)
        live = self._containers(client, project)
        for service in stack_services(state):
            if service in live:
                state.components[service] = ComponentState(name=service, pid=None, ports=_host_ports(live[service]))
        state.save(project.state_dir)
        gateway = live.get("gateway")
        if plan.layout.inspect_dir and gateway is not None:  # before readiness: capture from the first request
            self._start_inspector(project, state, gateway.id)
        staging.wait_ready(project, state, plan, timeout, failed=lambda: self._check_running(client, project, plan),
                           log_source=lambda: _container_lines(gateway) if gateway is not None else [])
        return self._wait_healthy(client, project, timeout=max(30.0, timeout / 2))

    def _teardown(self, project: Project, state: StackState) -> None:
        _stop_host(project, state)
        self._compose(project, "down", "--volumes", "--remove-orphans")

    def _start_inspector(self, project: Project, state: StackState, container_id: str) -> None:
        """gateway.inspect: the collector on this machine, as on native. It reaches the taps and the mocks'
        journals through their published ports and reads the gateway's output from a file a `docker logs`
        follower writes (the user's only: plugin logs may hold secrets). A sidecar container would need
        hlocal and its dependencies inside an image; having the gateway write its logs into the mount
        (--log-path) would take them from `hlocal logs`, readiness and crash reports, which read the
        container's output, and leave files owned by the container's user in the state folder."""
        output = GatewayFiles(project.state_dir).log(GATEWAY_OUTPUT)
        spawn_component(project, state, GATEWAY_OUTPUT, [docker_cli(), "logs", "--follow", container_id], {})
        spawn_component(project, state, INSPECTOR, collector_argv(project.state_dir, state, None, output=output), {})

    def _start(self, project: Project, state: StackState) -> None:
        try:
            self._compose(project, "up", "--detach", "--remove-orphans", "--no-build")
        except CommandFailed as exc:
            text = exc.stderr + exc.stdout
            if "port is already allocated" in text or "address already in use" in text:
                raise PortInUse(state.gateway_port, "a published port of the stack",
                                "docker reports it allocated") from exc
            raise EnvironmentProblem(f"`docker compose up` failed: {exc.message}",
                                     f"the compose file is {project.state_dir / COMPOSE_FILE}") from exc

    def _check_running(self, client: Any, project: Project, plan: staging.Plan) -> None:
        """While waiting: a container that exited is a failure, classified from its output."""
        for service, container in self._containers(client, project).items():
            container.reload()
            if container.status in ("exited", "dead"):
                lines = _container_lines(container)
                if service == "gateway":
                    found = classify_lines(lines, [c.plugin.name for c in plan.checks], str(project.state_dir))
                    if found is not None:
                        raise found
                code = container.attrs.get("State", {}).get("ExitCode")
                tail = "\n  ".join(lines[-5:])
                raise EnvironmentProblem(f"the {service} container exited with code {code}" + (f":\n  {tail}" if tail else ""),
                                         f"see `hlocal logs {service}`")

    def _wait_healthy(self, client: Any, project: Project, timeout: float) -> list[str]:
        """Docker's own healthchecks should agree with hlocal's readiness; say so if they cannot run."""

        def check() -> list[str]:
            notes = []
            for service, container in self._containers(client, project).items():
                container.reload()
                health = container.attrs.get("State", {}).get("Health", {}).get("Status")
                if health in ("starting", None) and container.status == "running":
                    raise NotYet(f"{service} health is {health}")
                if health == "unhealthy":
                    notes.append(f"{service} healthcheck reports unhealthy (the image may lack bash/python3)")
            return notes

        try:
            return Deadline(timeout=timeout, interval=0.2).until(check, what="container healthchecks")
        except Exception as exc:  # health is advisory; readiness was already proven through the ports
            return [f"healthchecks not settled: {exc}"]

    # -- down / status / logs ------------------------------------------------
    def down(self, project: Project, state: StackState | None) -> list[str]:
        GatewayFiles(project.state_dir).guard()
        stop_agent(project.state_dir)  # first: no reload may be in flight while the gateway stops
        stopped = _stop_host(project, state)  # and the collector must not chase a gateway that stops
        # No state (or an unreadable one): compose finds the containers by label.
        try:
            client = docker_client(timeout=5.0)
        except EnvironmentProblem:
            if state is None:
                return stopped
            raise
        present = sorted(self._containers(client, project))
        networks = client.networks.list(filters={"label": f"io.hlocal.stack={project.name}"})
        if present or networks or state is not None:
            self._compose(project, "down", "--volumes", "--remove-orphans")
        StackState.remove(project.state_dir)
        return present + stopped

    def status(self, project: Project, found: StateRead) -> StackStatus:
        return self.status_of(project, found.state)

    def status_of(self, project: Project, state: StackState | None) -> StackStatus:
        client = docker_client(timeout=5.0)
        containers = self._containers(client, project)
        if state is None and not containers:
            return StackStatus(name=project.name, runtime=self.name, running=False)
        components = []
        names = list(dict.fromkeys([*stack_services(state), *containers]))
        for service in names:
            container = containers.get(service)
            components.append(_container_status(service, container) if container is not None
                              else ComponentStatus(name=service, state="missing"))
        _place_replica_ports(components, state)
        components += [component_status(c, process_record(c)) for c in _host_components(state)]
        return StackStatus(
            name=project.name, runtime=self.name, flavor=state.flavor if state else None,
            running=all(c.state == "running" for c in components),
            gateway_url=state.gateway_url if state else None, admin_url=state.admin_url if state else None,
            components=components,
            plugins=[{"name": p.name, "sha256": p.sha256, "served_sha256": p.served_sha256, "abi": p.abi,
                      "adaptations": p.adaptations, "wasm": p.source} for p in (state.plugins if state else [])],
        )

    def gateway_output(self, project: Project) -> tuple[Any, int]:
        client = docker_client()
        gateway = self._containers(client, project).get("gateway")
        if gateway is None:
            return (lambda: []), 0

        def lines() -> list[str]:
            return _container_lines(gateway)

        return lines, len(lines())

    def logs(self, project: Project, state: StackState | None, *, service: str | None, plugin_only: bool,
             follow: bool, tail: int | None, since: float | None = None, timestamps: bool = False,
             prefix: bool | None = None) -> Iterator[str]:
        """The containers' output merged in time order (Docker stamps every line); `access` is the
        gateway's stdout lines that are JSON access entries."""
        if service in HOST_COMPONENTS:  # gateway.inspect: a process on this machine, logging to a file
            yield from follow_files({service: GatewayFiles(project.state_dir).log(service)}, plugin_only=plugin_only,
                                    follow=follow, tail=tail, since=since, timestamps=timestamps, prefix=bool(prefix))
            return
        access = service == "access"
        services = ["gateway"] if access or (plugin_only and not service) else ([service] if service else [])
        compose_file = project.state_dir / COMPOSE_FILE
        target = ["-f", str(compose_file)] if compose_file.exists() else ["-p", project_name(project)]
        base = [docker_cli(), "compose", *target, "logs", "--no-color", "--timestamps"]
        since_args = ["--since", _rfc3339(since)] if since is not None else []
        view = LogView(plugin_only=plugin_only, timestamps=timestamps, since=since,
                       prefix=(len(services) != 1) if prefix is None else prefix, width=9)

        def parse(raw: str, order: int) -> LogLine | None:
            name, text = _split_compose_line(raw, project_name(project))
            stamp, _, text = text.partition(" ")
            line = LogLine(name, text, _parse_time(stamp), order)
            if access and not _is_access_entry(text, any_text=project.gateway.access_log_format is not None):
                return None
            return line if view.keep(line) else None

        # History up to a moment, sorted and tailed here; then (with -f) everything after that moment.
        moment = _rfc3339(time.time())
        history = [line for i, raw in enumerate(stream([*base, *since_args, "--until", moment, *services]))
                   if (line := parse(raw, i)) is not None]
        history.sort(key=lambda line: (line.time or 0.0, line.order))
        if tail is not None:
            history = history[-tail:] if tail > 0 else []
        yield from (view.render(line) for line in history)
        if follow:
            for i, raw in enumerate(stream([*base, "--follow", "--since", moment, *services])):
                line = parse(raw, i)
                if line is not None:
                    yield view.render(line)


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _split_compose_line(raw: str, compose_project: str) -> tuple[str, str]:
    """`hlocal-x-gateway-1  | text` -> ("gateway", "text"); a line without the prefix is the gateway's."""
    head, sep, text = raw.partition(" | ")
    if not sep or " " in head.strip():
        return "gateway", raw
    container = head.strip()
    if container.startswith(f"{compose_project}-"):
        container = container[len(compose_project) + 1:]
    service, dash, number = container.rpartition("-")
    return (service if dash and number.isdigit() else container), text


def _is_access_entry(text: str, any_text: bool = False) -> bool:
    """Envoy's own lines start with a [timestamp]; Higress's access-log lines are JSON objects. With
    gateway.access_log_format (`any_text`) an entry may be any text: every line not Envoy's own."""
    import json

    if any_text:
        return bool(text.strip()) and not ENVOY_LOG_LINE.match(text)
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False

def _host_components(state: StackState | None) -> list[ComponentState]:
    """The stack's processes on this machine (gateway.inspect), as recorded."""
    return [state.components[name] for name in HOST_COMPONENTS if state is not None and name in state.components]


def _stop_host(project: Project, state: StackState | None) -> list[str]:
    """Stop the stack's processes on this machine: as recorded, then any other carrying its marker."""
    stopped = stop_components(state, list(reversed(HOST_COMPONENTS))) if state is not None else []
    return stopped + stop_marked(project.state_dir)


def _all_running(containers: dict[str, Any], state: StackState) -> bool:
    return all(s in containers and containers[s].status == "running" for s in stack_services(state))


def _container_lines(container: Any) -> list[str]:
    try:
        data = container.logs(stdout=True, stderr=True)
    except Exception:  # the container is gone: nothing more to read
        return []
    return data.decode("utf-8", errors="replace").splitlines()


def _host_ports(container: Any) -> dict[str, int]:
    names = {f"{GATEWAY_PORT}/tcp": "http", f"{ADMIN_PORT}/tcp": "admin", f"{CONTROL_PORT}/tcp": "control",
             f"{TLS_PORT}/tcp": "https"}
    container.reload()
    out = {}
    for port, bindings in (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
        for binding in bindings or []:
            out[names.get(port, port)] = int(binding["HostPort"])
    if not out:  # a stopped container has no live bindings: read what it was created with
        for port, bindings in (container.attrs.get("HostConfig", {}).get("PortBindings") or {}).items():
            for binding in bindings or []:
                out[names.get(port, port)] = int(binding["HostPort"])
    return out


def _place_replica_ports(components: list[ComponentStatus], state: StackState | None) -> None:
    """mock.replicas: the gateway container publishes each replica's journal (they share its network);
    show those ports on the replicas, as native does, with the port the gateway reaches each on."""
    replicas = {r.component: r for plan in (state.services.values() if state else []) for r in plan.replicas}
    published = {f"{replica_control_port(r.port)}/tcp" for r in replicas.values()}
    for component in components:
        if component.name in replicas:
            replica = replicas[component.name]
            component.ports = {"http": replica.port, "control": replica.control_port}
        elif component.name == "gateway":
            component.ports = {k: v for k, v in component.ports.items() if k not in published}


def _parse_time(text: str | None) -> float | None:
    if not text or text.startswith("0001-"):
        return None
    text = text.rstrip("Z")
    main, _, fraction = text.partition(".")
    moment = datetime.fromisoformat(main).replace(tzinfo=timezone.utc)
    return moment.timestamp() + float(f"0.{fraction[:6] or 0}")


def _container_status(service: str, container: Any) -> ComponentStatus:
    container.reload()
    st = container.attrs.get("State", {})
    running = container.status == "running"
    started = _parse_time(st.get("StartedAt"))
    return ComponentStatus(
        name=service,
        state="running" if running else container.status,
        pid=st.get("Pid") or None,
        ports=_host_ports(container),
        uptime_seconds=(time.time() - started) if running and started else None,
        exit_code=None if running else st.get("ExitCode"),
        detail=f"container {container.name} ({container.short_id})" + ("" if running else f", {st.get('Error') or 'stopped'}"),
        health=(st.get("Health") or {}).get("Status"),
        restarts=container.attrs.get("RestartCount"),
    )
