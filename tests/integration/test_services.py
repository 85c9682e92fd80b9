"""Higress fidelity on both runtimes: calls to services of each kind, routes to services, chains, rules."""

from __future__ import annotations

import socket

import pytest

from support import Project

pytestmark = pytest.mark.slow

KINDS = {  # one service per wasm-go cluster type, and the cluster name wasm-go computes for it
    "fqdn": ({"host": "auth.internal", "port": 8080}, "outbound|8080||auth.internal"),
    "static": ({"host": "legacy", "port": 80}, "outbound|80||legacy.static"),
    "dns": ({"host": "search", "port": 443, "domain": "search.example.com"}, "outbound|443||search.dns"),
    "k8s": ({"host": "users", "port": 9000, "namespace": "prod", "version": "v2"},
            "outbound|9000|v2|users.prod.svc.cluster.local"),
    "consul": ({"host": "billing", "port": 8500, "datacenter": "dc1"}, "outbound|8500||billing.dc1.consul"),
    "nacos": ({"host": "orders", "port": 8848, "namespace": "ns1", "group": "MY_GROUP"},
              "outbound|8848||orders.MY-GROUP.ns1.nacos"),
}


def _services() -> list[dict]:
    return [{"name": f"svc-{kind}", "kind": kind, **fields,
             "mock": {"stubs": [{"match": {"path": "/check"}, "respond": {"status": 200, "body": f"{kind} says yes"}},
                                {"match": {"path": "/slow"}, "respond": {"status": 200, "delay_ms": 2000}}]}}
            for kind, (fields, _) in KINDS.items()]


@pytest.fixture(scope="module")
def callout(module_projects, plugin_wasm, runtime) -> Project:
    project = module_projects(
        {"gateway": {"port": 0},
         "plugins": [{"name": "httpcall", "wasm": "httpcall.wasm",
                      "config": {"cluster": KINDS["fqdn"][1], "path": "/check", "timeout_ms": 1000}}],
         "routes": [{"name": "to-auth", "prefix": "/auth", "service": "svc-fqdn"}, {"name": "default", "prefix": "/"}],
         "services": [*_services(), {"name": "cache", "kind": "redis", "host": "redis.internal", "port": 6379}]},
        files={"httpcall.wasm": plugin_wasm("httpcall")}, name="callout", runtime=runtime)
    up = project.hlocal("up")
    assert up.returncode == 0, up
    assert "service  svc-k8s  outbound|9000|v2|users.prod.svc.cluster.local → mock" in up.stdout
    return project


def _call(project: Project, cluster: str, path: str = "/check") -> dict:
    project.config["plugins"][0]["config"] = {"cluster": cluster, "path": path, "timeout_ms": 1000}
    project.write()
    reload = project.hlocal("reload")
    assert reload.returncode == 0, reload
    result = project.hlocal("request", "GET", "/x", "--json")
    assert result.returncode == 0, result
    return result.json()


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_call_to_each_kind_of_service_reaches_its_mock(callout: Project, kind: str) -> None:
    doc = _call(callout, KINDS[kind][1])
    upstream = doc["upstream"]["headers"]
    assert upstream["x-call-status"] == ["200"]
    assert upstream["x-call-body"] == [f"{kind} says yes"]  # the plugin saw the mock's reply
    calls = doc["service_calls"][f"svc-{kind}"]  # the mock's own journal shows the call
    assert [(c["method"], c["path"]) for c in calls] == [("GET", "/check")]
    assert set(doc["service_calls"]) == {f"svc-{kind}"}


def test_a_call_to_an_undeclared_service_is_explained(callout: Project) -> None:
    doc = _call(callout, "outbound|8080||auth.internl")
    assert doc["response"]["status"] == 502
    (note,) = doc["notes"]
    assert "called cluster 'outbound|8080||auth.internl', which does not exist here" in note
    assert "BadArgument" in note and "svc-fqdn → outbound|8080||auth.internal" in note
    assert "did you mean outbound|8080||auth.internal (svc-fqdn)?" in note


def test_a_call_that_times_out_names_the_service(callout: Project) -> None:
    doc = _call(callout, KINDS["consul"][1], path="/slow")
    assert doc["upstream"]["headers"]["x-call-status"] == ["504"]
    (note,) = doc["notes"]
    assert "a call to service svc-consul (outbound|8500||billing.dc1.consul) timed out" in note
    assert "delays some answers by up to 2000 ms" in note


def test_a_route_can_target_a_service(callout: Project) -> None:
    _call(callout, KINDS["fqdn"][1])
    doc = callout.hlocal("request", "GET", "/auth/login", "--json").json()
    assert doc["upstream"] is None  # the default backend never saw it
    paths = [c["path"] for c in doc["service_calls"]["svc-fqdn"]]
    assert "/auth/login" in paths


def test_redis_service_runs_and_answers(callout: Project) -> None:
    status = callout.hlocal("status", "--json").json()
    cache = next(c for c in status["components"] if c["name"] == "svc-cache")
    assert cache["state"] == "running"
    port = callout.state()["services"]["cache"]["host_port"]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"PING\r\n")
        assert sock.recv(16).startswith(b"+PONG")
    check = callout.hlocal("check").stdout
    assert "through hlocal's Redis relay" in check


def test_a_service_mocks_stubs_reload_in_place(callout: Project) -> None:
    service = next(s for s in callout.config["services"] if s["name"] == "svc-static")
    original = service["mock"]
    service["mock"] = {"stubs": [{"match": {"path": "/check"}, "respond": {"status": 200, "body": "changed my mind"}}]}
    try:
        doc = _call(callout, KINDS["static"][1])
        assert doc["upstream"]["headers"]["x-call-body"] == ["changed my mind"]
    finally:
        service["mock"] = original
        callout.write()
        assert "service svc-static stubs updated" in callout.hlocal("reload").stdout


def test_plugins_run_in_higress_phase_and_priority_order(make_project, plugin_wasm, runtime) -> None:
    def appender(name: str, phase: str | None, priority: int | None) -> dict:
        plugin = {"name": name, "wasm": "headers.wasm", "config": {"request_headers": {"x-order": name}}}
        if phase:
            plugin["phase"] = phase
        if priority is not None:
            plugin["priority"] = priority
        return plugin

    project = make_project({"gateway": {"port": 0}, "plugins": [
        appender("stats-10", "STATS", 10), appender("authn-1", "AUTHN", 1),
        appender("default-100", None, 100), appender("authn-5", "AUTHN", 5), appender("authz", "authz", None)]},
        files={"headers.wasm": plugin_wasm("headers")}, name="chain", runtime=runtime)
    expected = ["authn-5", "authn-1", "authz", "stats-10", "default-100"]
    chain = [item.get("plugin") for item in project.hlocal("check", "--json").json()["chain"] if "plugin" in item]
    assert chain == expected
    assert (up := project.hlocal("up")).returncode == 0, up
    seen = project.hlocal("request", "GET", "/", "--json").json()["upstream"]["headers"]["x-order"]
    assert seen == expected  # each plugin appended its name as the request passed it


def test_rules_by_route_domain_and_service(make_project, transformer_wasm, runtime) -> None:
    """wasm-go's own rule matcher, fed by the property bridge: route_name and cluster_name."""
    def add(value: str) -> dict:
        return {"reqRules": [{"operate": "add", "headers": [{"key": "x-rule", "value": value}]}]}

    project = make_project({
        "gateway": {"port": 0},
        "plugins": [{"name": "transformer", "wasm": "t.wasm", "config": add("global"), "rules": [
            {"match_route": ["api"], "config": add("by-route")},
            {"match_domain": ["*.example.com"], "config": add("by-domain")},
            {"match_service": ["auth.internal"], "config": add("by-service")},
        ]}],
        "routes": [{"name": "api", "prefix": "/api"}, {"name": "auth", "prefix": "/auth", "service": "auth"},
                   {"name": "default", "prefix": "/"}],
        "services": [{"name": "auth", "kind": "fqdn", "host": "auth.internal", "port": 8080}],
    }, files={"t.wasm": transformer_wasm}, name="rules", runtime=runtime)
    assert (up := project.hlocal("up")).returncode == 0, up

    def rule(path: str, *headers: str) -> list[str]:
        args = [arg for header in headers for arg in ("-H", header)]
        doc = project.hlocal("request", "GET", path, *args, "--json").json()
        if doc["upstream"] is not None:
            return doc["upstream"]["headers"]["x-rule"]
        return doc["service_calls"]["auth"][-1]["headers"]["x-rule"]

    assert rule("/api/x") == ["by-route"]
    assert rule("/web", "host: shop.example.com") == ["by-domain"]
    assert rule("/auth/login") == ["by-service"]
    assert rule("/web") == ["global"]


def test_a_service_can_point_at_an_existing_server(make_project, plugin_wasm, runtime) -> None:
    """`url:` makes the cluster point at a server hlocal did not start (on docker: via the host gateway)."""
    from higress_local.mock import MockServer

    stubs = {"stubs": [{"match": {"path": "/check"}, "respond": {"status": 200, "body": "outside says yes"}}]}
    # On docker the container reaches the host through the bridge, so listen beyond loopback there.
    with MockServer(stubs, host="127.0.0.1" if runtime == "native" else "0.0.0.0", name="outside") as outside:
        host = "127.0.0.1" if runtime == "native" else "host.docker.internal"
        project = make_project({
            "gateway": {"port": 0},
            "plugins": [{"name": "httpcall", "wasm": "httpcall.wasm",
                         "config": {"cluster": "outbound|80||pay.example.com", "path": "/check", "timeout_ms": 3000}}],
            "services": [{"name": "pay", "kind": "fqdn", "host": "pay.example.com", "port": 80,
                          "url": f"http://{host}:{outside.port}"}],
        }, files={"httpcall.wasm": plugin_wasm("httpcall")}, name="url", runtime=runtime)
        assert (up := project.hlocal("up")).returncode == 0, up
        doc = project.hlocal("request", "GET", "/", "--json").json()
        assert doc["upstream"]["headers"]["x-call-body"] == ["outside says yes"]
        assert [e["path"] for e in outside.journal()] == ["/check"]
