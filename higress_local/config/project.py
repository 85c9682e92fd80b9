"""Load and validate hlocal.yaml into typed, immutable models."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from ..higress import releases
from ..errors import ConfigError
from ..settings import CONFIG_NAMES, DEFAULT_WASM_LOG_LEVEL, FLAVORS, RUNTIMES
from ..system.userfiles import CONFIG_CAP, WASM_CAP, check_regular_file, read_regular_file, safe_absolute, size_text
from .models import (
    PHASES, SERVICE_KINDS, Backend, Build, Endpoint, Expect, Gateway, Plugin, Probe, ProbeRequest, Project, Route, Rule,
    Service, UpstreamExpect,
)
from .mcp import MCP_ONLY_EXPECT_KEYS, parse_mcp_call, parse_mcp_expect
from .mcp import check_expect_keys as check_mcp_expect_keys
from .mcp_session import parse_mcp_server
from .schema import Node, describe, load_yaml
from .validate import check_header, check_path, check_regex
from .envsubst import expand
from ..mock.stubs import parse_stubs, StubConfigError

ENVOY_CHOICE = r"bundled|match|1\.[0-9]{2}"  # gateway.envoy (native runtime): see runtime/envoys.py
LOG_LEVELS = ("trace", "debug", "info", "warning", "error", "critical", "off")
NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def find_config(path: str | Path | None, cwd: Path | None = None) -> Path:
    """Return the hlocal.yaml to use: the one given (a file or its folder), else the nearest one from
    the current directory upwards (as Compose and pytest find theirs)."""
    cwd = cwd or Path.cwd()
    if path is not None:
        candidate = Path(path)
        if candidate.is_dir():
            candidate = next((candidate / n for n in CONFIG_NAMES if (candidate / n).exists()), candidate / CONFIG_NAMES[0])
        if not candidate.exists():
            raise ConfigError(f"config file not found: {candidate}", "check the -f path")
        return safe_absolute(candidate)
    for directory in (cwd, *cwd.parents):
        for name in CONFIG_NAMES:
            if (directory / name).exists():
                return safe_absolute(directory / name)
    raise ConfigError(
        f"no hlocal.yaml in {cwd}",
        "(nor in its parent folders) run hlocal in the plugin's folder or below it, pass -f PATH, "
        "or create a project with `hlocal new NAME` / `hlocal init`",
    )


def load_project(path: str | Path | None = None, cwd: Path | None = None, *, name: str | None = None,
                 port: int | None = None, env: Mapping[str, str] | None = None) -> Project:
    """Find, parse, interpolate (${VAR}) and validate hlocal.yaml; `name`/`port` override the file's."""
    file = find_config(path, cwd)
    # A FIFO, a device or a huge file is refused unread (fileguard); then the YAML limits (schema).
    raw = read_regular_file(file, CONFIG_CAP, "config file", error=ConfigError,
                            hint=f"point -f at a regular hlocal.yaml file (at most {size_text(CONFIG_CAP)})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {file}: {exc}", "check the file's permissions and encoding") from exc
    data = load_yaml(text, file.name)
    if "$" in text:
        data = expand(data, os.environ if env is None else env, file.name)
    return apply_overrides(parse_project(data, file), name=name, port=port)


def apply_overrides(project: Project, *, name: str | None = None, port: int | None = None) -> Project:
    """The project with the command line's --name / --port in place of the file's values."""
    import dataclasses

    if name is not None:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ConfigError(f"--name {name!r} is not a valid stack name",
                              "use lowercase letters, digits, - and _ (at most 63 characters)")
        project = dataclasses.replace(project, name=name)
    if port is not None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port {port} is not a port number", "use 1-65535, or 0 for a free port")
        project = dataclasses.replace(project, gateway=dataclasses.replace(project.gateway, port=port), port_option=True)
    return project


def parse_project(data: Any, file: Path) -> Project:
    """Validate a parsed document; `file` anchors relative paths and names errors."""
    root = Node(data, "", file.name)
    if data is None:
        raise root.error("the file is empty", "start from `hlocal init` or the README example")
    root.mapping(["name", "runtime", "gateway", "plugins", "routes", "backend", "probes", "services"])
    name_node = root.child("name")
    name = name_node.string(sanitise_name(file.parent.name), pattern=NAME_PATTERN,
                            what="a valid stack name (lowercase letters, digits, - and _)")
    plugins = tuple(_plugin(n, file.parent) for n in root.child("plugins").list().items())
    _unique(root.child("plugins"), [p.name for p in plugins], "plugin name")
    routes = tuple(_route(n) for n in root.child("routes").list().items()) or (Route(name="default"),)
    _unique(root.child("routes"), [r.name for r in routes], "route name")
    _check_domains(root.child("routes"), routes)
    probes = tuple(_probe(n) for n in root.child("probes").list().items())
    _unique(root.child("probes"), [p.name for p in probes], "probe name")
    services = tuple(_service(n) for n in root.child("services").list().items())
    _unique(root.child("services"), [s.name for s in services], "service name")
    _check_services(root, services, routes)
    return Project(
        services=services,
        name=name,
        file=file,
        runtime=root.child("runtime").choice(RUNTIMES, RUNTIMES[0]),
        gateway=_gateway(root.child("gateway")),
        plugins=plugins,
        routes=routes,
        backend=_backend(root.child("backend")),
        probes=probes,
    )


def sanitise_name(raw: str) -> str:
    """Turn a directory name into a stack name Envoy, Compose and file systems accept."""
    name = re.sub(r"[^a-z0-9_-]+", "-", raw.lower()).strip("-_")
    return (name or "hlocal")[:63]


def _gateway(node: Node) -> Gateway:
    node.mapping(["flavor", "port", "admin_port", "log_level", "wasm_log_level", "image", "tls", "tls_port",
                  "higress", "envoy", "inspect", "access_log_format", "downstream",
                  "mcp_server"])
    flavor = node.child("flavor")
    return Gateway(
        flavor=None if flavor.value is None else flavor.choice(FLAVORS),
        higress=_higress_release(node.child("higress")),
        inspect=None if node.child("inspect").value is None else node.child("inspect").boolean(False),
        envoy=node.child("envoy").string("bundled", pattern=ENVOY_CHOICE,
                                         what="bundled, match or an Envoy minor such as 1.36"),
        port=node.child("port").port(10000),
        admin_port=node.child("admin_port").port(0),
        log_level=node.child("log_level").choice(LOG_LEVELS, "info"),
        wasm_log_level=node.child("wasm_log_level").choice(LOG_LEVELS, DEFAULT_WASM_LOG_LEVEL),
        image=node.child("image").optional_string(),
        tls=node.child("tls").boolean(False),
        tls_port=node.child("tls_port").port(0),
        access_log_format=_access_log_format(node.child("access_log_format")),
        connection_buffer_limits=_connection_buffer_limits(node.child("downstream")),
        mcp_server=parse_mcp_server(node.child("mcp_server")),
    )


def _connection_buffer_limits(node: Node) -> int:
    """gateway.downstream.connection_buffer_limits: Higress's downstream.connectionBufferLimits (bytes,
    an Envoy uint32; Higress's default 32768, pkg/ingress/kube/configmap/global.go)."""
    return node.mapping(["connection_buffer_limits"]).child("connection_buffer_limits").integer(
        32768, low=1, high=2**32 - 1)


def _access_log_format(node: Node) -> str | None:
    """gateway.access_log_format: text, as Higress's accessLogFormat; its %COMMAND%s are checked by
    Envoy itself when the stack is staged (runtime/logformat.py)."""
    if node.value is None:
        return None
    if not isinstance(node.value, str):
        raise node.error(f"expected text, got {describe(node.value)}",
                         "quote the format; a JSON-looking format is one string: '{\"path\":\"%REQ(:PATH)%\"}'")
    if not node.value.strip():
        raise node.error("is empty", "remove the key for Higress's format, or give one with %COMMAND%s")
    if "\0" in node.value:
        raise node.error("contains a NUL character", "remove it")
    return node.value


def _higress_release(node: Node) -> str | None:
    """gateway.higress: a Higress release hlocal knows (higress/releases.py), kept as written minus a leading v."""
    if node.value is None:
        return None
    if not isinstance(node.value, str):
        raise node.error(f"{node.value!r} is not a version string", 'quote it: higress: "2.2.4"')
    try:
        return releases.release(node.value).version
    except ConfigError as error:
        raise node.error(error.message.split(": ", 1)[-1], error.hint) from None


def _plugin(node: Node, base: Path) -> Plugin:
    node.mapping(["name", "wasm", "config", "rules", "fail_open", "failure_policy", "build", "phase", "priority"],
                 optional=False)
    name = node.child("name").string(pattern=NAME_PATTERN, what="a valid plugin name (lowercase letters, digits, - and _)")
    wasm_node = node.child("wasm")
    wasm = safe_absolute(base / wasm_node.string())
    # Not built yet is fine (`hlocal build` makes it); anything there must be a module-sized regular file.
    check_regular_file(wasm, WASM_CAP, f"{_where(wasm_node)}: wasm file", missing_ok=True,
                       hint=f"point {wasm_node.path} at the built .wasm file (a regular file of at most "
                            f"{size_text(WASM_CAP)})")
    config = node.child("config").mapping().value
    rules = tuple(_rule(n) for n in node.child("rules").list().items())
    build_node = node.child("build")
    return Plugin(
        name=name,
        wasm=wasm,
        config=config,
        rules=rules,
        fail_open=node.child("fail_open").boolean(False),
        failure_policy=_failure_policy(node),
        build=None if build_node.value is None and "build" not in node.value else _build(build_node, base, wasm),
        phase=_phase(node.child("phase")),
        priority=node.child("priority").integer(0),
    )


def _failure_policy(node: Node) -> str:
    """What Envoy does with the plugin after its VM traps: FAIL_RELOAD (a fresh VM for the next request,
    as Higress's gateway does), FAIL_CLOSED (503) or FAIL_OPEN (skip the plugin). `fail_open: true`
    alone keeps meaning FAIL_OPEN."""
    policy_node, fail_open = node.child("failure_policy"), node.value.get("fail_open") is True
    if policy_node.value is None:
        return "FAIL_OPEN" if fail_open else "FAIL_RELOAD"
    policy_node.value = policy_node.string().upper()
    policy = policy_node.choice(FAILURE_POLICIES)
    if fail_open and policy != "FAIL_OPEN":
        raise policy_node.error(f"{policy} contradicts fail_open: true", "keep one of them")
    return policy


def _build(node: Node, base: Path, wasm: Path) -> Build:
    """`build: {}` (or `build: go`) means the default go build; a command is an argv list or a string split like a shell would (but never run by one)."""
    import shlex

    if node.value in ("go", True):
        node.value = {}
    node.mapping(["command", "dir", "env", "image"])
    command_node = node.child("command")
    command: tuple[str, ...] | None = None
    if isinstance(command_node.value, str):
        try:
            command = tuple(shlex.split(command_node.value))
        except ValueError as exc:
            raise command_node.error(f"cannot split the command: {exc}") from exc
    elif command_node.value is not None:
        command = tuple(command_node.string_list(single_ok=False))
    if command == ():
        raise command_node.error("is empty")
    directory = node.child("dir").optional_string()
    return Build(
        command=command,
        dir=safe_absolute(base / directory) if directory else wasm.parent,
        env=node.child("env").string_map(),
        image=node.child("image").string("golang:1.24"),
    )


def parse_rules(data: Any, source: str) -> tuple[Rule, ...]:
    """Validate a `rules:` list given outside hlocal.yaml (e.g. by the pytest marker)."""
    return tuple(_rule(n) for n in Node(data, "rules", source).list().items())


FAILURE_POLICIES = ("FAIL_RELOAD", "FAIL_CLOSED", "FAIL_OPEN")


def _phase(node: Node) -> str:
    """Higress's phase names; `default`/unset is UNSPECIFIED_PHASE (the end of the chain)."""
    if node.value is None:
        return "UNSPECIFIED_PHASE"
    text = node.string().upper()
    if text in ("DEFAULT", "UNSPECIFIED", "UNSPECIFIED_PHASE"):
        return "UNSPECIFIED_PHASE"
    node.value = text
    return node.choice(PHASES)


# Which keys each service kind takes besides name/kind/host/port and the upstream choice.
_KIND_KEYS = {"fqdn": (), "static": (), "dns": ("domain",), "k8s": ("namespace", "version"),
              "consul": ("datacenter",), "nacos": ("namespace", "group", "version"), "redis": ()}
_UPSTREAM_KEYS = ("mock", "url", "urls", "image", "container_port", "timeout_ms")
URL_PATTERN = r"https?://[^/\s:]+(:\d+)?/?"


def _service(node: Node) -> Service:
    kind = node.mapping(optional=False).child("kind").choice(SERVICE_KINDS)
    node.mapping(["name", "kind", "host", "port", *_KIND_KEYS[kind], *_UPSTREAM_KEYS])
    given = [k for k in ("mock", "url", "urls", "image") if node.child(k).value is not None]
    if len(given) > 1:
        raise node.error(f"give one of mock, url, urls or image, not {' and '.join(given)}")
    if kind == "consul" and not node.child("datacenter").value:
        raise node.child("datacenter").error("is required for kind consul (the cluster is SVC.DC.consul)")
    if kind == "nacos" and not node.child("namespace").value:
        raise node.child("namespace").error("is required for kind nacos (the namespace id)")
    mock = node.child("mock").mapping(["stubs", "replicas", "metrics"])
    replicas, replica_metrics = _replicas(mock)
    if kind == "redis" and (replicas > 1 or replica_metrics):
        raise mock.error("replicas and metrics are for mock services", "a redis service runs one redis-server")
    stubs = mock.child("stubs").list().value
    if stubs:
        try:
            parse_stubs(stubs)
        except StubConfigError as exc:
            raise ConfigError(f"{node.source}: {mock.path}.{exc}", "see backend.stubs in README.md") from exc
    url = node.child("url").optional_string()
    if url is not None and not re.fullmatch(URL_PATTERN, url):
        raise node.child("url").error(f"{url!r} is not like http://HOST:PORT", "the service's cluster points at HOST:PORT")
    return Service(
        name=node.child("name").string(pattern=NAME_PATTERN, what="a valid service name"),
        kind=kind,
        host=node.child("host").string(pattern=r"[A-Za-z0-9_][A-Za-z0-9_.-]*", what="a host name"),
        port=node.child("port").integer(low=1, high=65535),
        namespace=node.child("namespace").string(""), version=node.child("version").string(""),
        datacenter=node.child("datacenter").string(""), group=node.child("group").string(""),
        domain=node.child("domain").string(""),
        stubs=tuple(stubs), url=url, urls=_endpoints(node.child("urls")), image=node.child("image").optional_string(),
        container_port=None if node.child("container_port").value is None
        else node.child("container_port").integer(low=1, high=65535),
        timeout_ms=None if node.child("timeout_ms").value is None else node.child("timeout_ms").integer(low=1),
        replicas=replicas, replica_metrics=replica_metrics,
    )


MAX_REPLICAS = 16  # each replica is a mock process (about 25 MB)


def _replicas(mock: Node) -> tuple[int, tuple[str, ...]]:
    """mock.replicas (1 by default) and mock.metrics: one Prometheus text per replica, in order."""
    try:
        replicas = mock.child("replicas").integer(1, low=1, high=MAX_REPLICAS)
    except ConfigError as exc:
        raise ConfigError(exc.message, f"a whole number of mock endpoints, 1 to {MAX_REPLICAS} (each its own "
                                       f"process and journal)") from None
    metrics_node = mock.child("metrics")
    if metrics_node.value is None:
        return replicas, ()
    metrics = tuple(item.string() for item in metrics_node.list().items())
    if len(metrics) != replicas:
        raise metrics_node.error(f"lists {len(metrics)} metrics for {replicas} replica{'s' * (replicas != 1)}",
                                 "give one Prometheus text per replica, in replica order ('' for none)")
    return replicas, metrics


def _endpoints(node: Node) -> tuple[Endpoint, ...]:
    """`urls`: each item a URL, or {url, metrics}; hosts are IP literals (the addresses the plugin pins)."""
    endpoints, given = [], node.value is not None
    for item in node.list().items():
        fields = item.mapping(["url", "metrics"], optional=False) if isinstance(item.value, dict) else None
        url_node = fields.child("url") if fields else item
        url = url_node.string()
        parts = urlsplit(url)
        try:
            ipaddress.ip_address(parts.hostname or "")
        except ValueError:
            raise url_node.error(f"{url!r} is not like http://IP:PORT",
                                 "give each endpoint as an IP address and port (the host the plugin pins)") from None
        if not re.fullmatch(URL_PATTERN, url.replace(f"[{parts.hostname}]", "h")):
            raise url_node.error(f"{url!r} is not like http://IP:PORT", "no path, query or user part")
        metrics = fields.child("metrics").string("") if fields else ""
        endpoints.append(Endpoint(address=parts.hostname or "", port=parts.port or 80, metrics=metrics))
    if given and not endpoints:
        raise node.error("is empty", "list at least one http://IP:PORT")
    return tuple(endpoints)


def _check_services(root: Node, services: tuple[Service, ...], routes: tuple[Route, ...]) -> None:
    clusters: dict[str, int] = {}
    for index, service in enumerate(services):
        name = service.cluster_name()
        if name in clusters:
            raise root.child("services").child(index).error(
                f"renders the same cluster {name!r} as services[{clusters[name]}]", "change host, port or kind")
        clusters[name] = index
    known = {s.name for s in services}
    for index, service in enumerate(services):  # replica i of `llm` runs (and logs) as svc-llm-i
        taken = [f"{service.name}-{i}" for i in range(service.replicas) if f"{service.name}-{i}" in known]
        if service.replicas > 1 and taken:
            raise root.child("services").child(index).child("mock").child("replicas").error(
                f"replica {taken[0][len(service.name) + 1:]} of service {service.name!r} would share the "
                f"process name svc-{taken[0]} with service {taken[0]!r}", "rename one of the two services")
    for index, route in enumerate(routes):
        if route.service is not None and route.service not in known:
            node = root.child("routes").child(index).child("service")
            raise node.error(f"no service named {route.service!r}",
                             f"declare it under services: (known: {', '.join(sorted(known)) or 'none'})")
        if route.service is not None and next(s for s in services if s.name == route.service).kind == "redis":
            raise root.child("routes").child(index).child("service").error("a route cannot target a redis service")


def _rule(node: Node) -> Rule:
    keys = ["match_route", "match_domain", "match_service", "match_route_prefix"]
    node.mapping(keys + ["config"], optional=False)
    matches = {key: tuple(node.child(key).string_list()) for key in keys}
    if not any(matches.values()):
        raise node.error("a rule needs at least one of " + ", ".join(keys))
    return Rule(config=node.child("config").mapping().value, **matches)


def _route(node: Node) -> Route:
    node.mapping(["name", "domains", "prefix", "path", "regex", "headers", "timeout_ms", "service"], optional=False)
    given = [k for k in ("prefix", "path", "regex") if node.child(k).value is not None]
    if len(given) > 1:
        raise node.error(f"give one of prefix, path or regex, not {' and '.join(given)}")
    prefix = node.child("prefix").string("/") if not given or given == ["prefix"] else None
    for key in ("prefix", "path"):
        value = node.child(key).optional_string()
        if value is not None and not value.startswith("/"):
            raise node.child(key).error(f"{value!r} must start with /")
    regex = node.child("regex").optional_string()
    if regex is not None:  # Envoy matches it with RE2, not Python's re
        check_regex(regex, _where(node.child("regex")))
    _check_header_map(node.child("headers"))
    domains = tuple(node.child("domains").string_list()) or ("*",)
    twice = next((d for i, d in enumerate(domains) if d in domains[:i]), None)
    if twice is not None:  # Envoy refuses the whole bootstrap for it
        raise node.child("domains").error(f"domain {twice!r} is listed twice")
    return Route(
        name=node.child("name").string(pattern=r"[A-Za-z0-9][A-Za-z0-9_.:/-]*", what="a valid route name"),
        domains=domains,
        prefix=prefix,
        path=node.child("path").optional_string(),
        regex=regex,
        headers=node.child("headers").string_map(lower_keys=True),
        timeout_ms=None if node.child("timeout_ms").value is None else node.child("timeout_ms").integer(low=0),
        service=node.child("service").optional_string(),
    )


def _backend(node: Node) -> Backend:
    node.mapping(["stubs", "image"])
    stubs = node.child("stubs").list()
    if stubs.value:
        # Imported only when there are stubs to check: a one-shot `hlocal reload` stays quick.

        try:
            parse_stubs(stubs.value)  # the mock's own validator: one definition of what a stub is
        except StubConfigError as exc:
            raise ConfigError(f"{node.source}: {node.path}.{exc}", "see backend.stubs in README.md") from exc
    return Backend(stubs=tuple(stubs.value), image=node.child("image").optional_string())


def _probe(node: Node) -> Probe:
    node.mapping(["name", "request", "mcp", "expect"], optional=False)
    is_mcp = node.child("mcp").value is not None
    check_mcp_expect_keys(node, is_mcp)
    req = node.child("request").mapping(["method", "path", "headers", "body", "json"])
    if req.child("body").value is not None and req.child("json").value is not None:
        raise req.error("give body or json, not both")
    method = req.child("method")
    if isinstance(method.value, str):
        method.value = method.value.upper()
    _check_header_map(req.child("headers"))
    request = ProbeRequest(
        method=method.choice(HTTP_METHODS, "GET"),
        path=req.child("path").string("/"),
        headers=req.child("headers").multi_map(lower_keys=True),
        body=req.child("body").optional_string(),
        json=req.child("json").value,
    )
    check_path(request.path, _where(req.child("path")))
    exp = node.child("expect").mapping(["status", "headers", "headers_absent", "body_contains", "json", "upstream",
                                        "services", *MCP_ONLY_EXPECT_KEYS])
    text_contains, is_error = parse_mcp_expect(exp)
    upstream = None if exp.child("upstream").value is None else _upstream_expect(exp.child("upstream"))
    services_node = exp.child("services").mapping()
    services = {str(name): _upstream_expect(services_node.child(name)) for name in (services_node.value or {})}
    status = exp.child("status")
    return Probe(
        name=node.child("name").string(),
        request=request,
        expect=Expect(
            status=None if status.value is None else status.integer(low=100, high=599),
            headers=exp.child("headers").string_map(lower_keys=True),
            headers_absent=tuple(h.lower() for h in exp.child("headers_absent").string_list()),
            body_contains=exp.child("body_contains").optional_string(),
            json=exp.child("json").value,
            upstream=upstream,
            services=services,
            text_contains=text_contains,
            is_error=is_error,
        ),
        mcp=parse_mcp_call(node.child("mcp")) if is_mcp else None,
    )


def _upstream_expect(node: Node) -> UpstreamExpect:
    """expect.upstream, and each expect.services.NAME, which take the same keys."""
    up = node.mapping(["headers", "headers_absent", "method", "path", "query", "body_contains", "json", "received"])
    return UpstreamExpect(
        headers=up.child("headers").multi_map(lower_keys=True),
        headers_absent=tuple(h.lower() for h in up.child("headers_absent").string_list()),
        method=None if up.child("method").value is None else up.child("method").string().upper(),
        path=up.child("path").optional_string(),
        query=up.child("query").multi_map(),
        body_contains=up.child("body_contains").optional_string(),
        json=up.child("json").value,
        received=None if up.child("received").value is None else up.child("received").boolean(True),
    )


def _where(node: Node) -> str:
    """How a config/validate.py error names a key: `hlocal.yaml: probes[0].request.path`."""
    return f"{node.source}: {node.path}"


def _check_header_map(node: Node) -> None:
    """Header names and values as they will go on the wire (or into an Envoy header matcher)."""
    if not isinstance(node.value, dict):
        return  # the type errors come from the Node checks that follow
    for name, value in node.value.items():
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(name, str) and isinstance(item, (str, int, float)) and not isinstance(item, bool):
                check_header(name, str(item), _where(node.child(name)))


def _unique(node: Node, names: list[str], what: str) -> None:
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in seen:
            raise node.child(index).child("name").error(
                f"duplicate {what} {name!r} (also at index {seen[name]})", f"give each {what} a distinct value"
            )
        seen[name] = index


def _check_domains(node: Node, routes: tuple[Route, ...]) -> None:
    """Routes become virtual hosts grouped by domain list; Envoy rejects a domain in two of them."""
    owner: dict[str, tuple[int, tuple[str, ...]]] = {}
    for index, route in enumerate(routes):
        for domain in route.domains:
            if domain in owner and owner[domain][1] != route.domains:
                raise node.child(index).child("domains").error(
                    f"domain {domain!r} is also in routes[{owner[domain][0]}] with a different domain list",
                    "routes that share a domain must list exactly the same domains",
                )
            owner.setdefault(domain, (index, route.domains))
