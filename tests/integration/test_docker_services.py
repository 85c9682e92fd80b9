"""Services with several endpoints on the docker runtime: `mock: {replicas: N}` (a mock container per
replica in the gateway's network namespace, each with its own journal) and `urls:` (servers on this
machine, reached through Docker's bridge): one cluster, a host per endpoint, each with its own journal.

The official ai-load-balancer (which pins a host) cannot run here: it imports Redis functions, which the
docker runtime's stock-Envoy flavor refuses, and the Higress image cannot be pulled; the pinning itself is
the same rendered cluster as on native (tests/integration/test_mock_replicas.py)."""

from __future__ import annotations

import subprocess

import pytest

from support import Project, docker_objects

pytestmark = [pytest.mark.docker, pytest.mark.slow]



def _up(make_project, service: dict, name: str) -> Project:
    project = make_project(
        {"gateway": {"port": 0}, "routes": [{"name": "llm", "prefix": "/", "service": "llm"}],
         "services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80, **service}]},
        name=name, runtime="docker")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def _send(project: Project, path: str) -> dict:
    done = project.hlocal("request", "POST", path, "-d", "{}", "--json")
    assert done.returncode == 0, done
    return done.json()


def test_mock_replicas_each_answer_with_their_own_journal(make_project, docker_images) -> None:
    from higress_local.stack import Stack

    stubs = [{"match": {"path": "/s"}, "respond": {"status": 201}}]
    project = _up(make_project, {"mock": {"replicas": 3, "stubs": stubs}}, "dockerreplicas")
    llm = Stack.from_file(project.path, attach=True).start().service("llm")
    seen: list[str] = []
    while len(set(seen)) < 3 and len(seen) < 30:  # the cluster's round robin (each worker its own) reaches all
        exchange = _send(project, f"/s?n={len(seen)}")
        assert exchange["response"]["status"] == 201, exchange  # every replica answers from the stubs
        seen.append(exchange["received_by"])
    assert set(seen) == {"llm[0]", "llm[1]", "llm[2]"}, seen
    assert llm.counts() == [seen.count(f"llm[{i}]") for i in range(3)]  # each journal has what its replica got
    hosts = [r.host for r in llm.replicas]
    assert len(set(hosts)) == 3 and all(h.startswith("127.0.0.1:") for h in hosts)  # in the gateway's namespace
    components = {c["name"]: c for c in project.hlocal("status", "--json").json()["components"]}
    assert {name: c["state"] for name, c in components.items()} == {
        "backend": "running", "gateway": "running", "svc-llm-0": "running", "svc-llm-1": "running",
        "svc-llm-2": "running"}
    for r in project.state()["services"]["llm"]["replicas"]:  # each replica's ports on it, as on native
        assert components[r["component"]]["ports"] == {"http": r["port"], "control": r["control_port"]}
    assert set(components["gateway"]["ports"]) == {"http", "admin"}
    stubs[0]["respond"]["status"] = 202
    project.write()
    reload = project.hlocal("reload")
    assert reload.returncode == 0 and "service llm stubs updated" in reload.stdout, reload
    answered: dict[str, set[int]] = {}
    for n in range(30):
        exchange = _send(project, f"/s?after={n}")
        answered.setdefault(exchange["received_by"], set()).add(exchange["response"]["status"])
        if len(answered) == 3:
            break
    assert answered == {f"llm[{i}]": {202} for i in range(3)}  # every replica took the new stubs
    assert project.hlocal("down").returncode == 0
    assert docker_objects(project.name) == []


def _bridge_gateway() -> str:
    """This machine's address on Docker's default bridge, which every container can reach."""
    done = subprocess.run(["docker", "network", "inspect", "bridge", "--format",
                           "{{range .IPAM.Config}}{{.Gateway}}{{end}}"], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_urls_reach_servers_on_this_machine_one_host_each(make_project, docker_images) -> None:
    from higress_local.mock import MockServer

    bridge = _bridge_gateway()
    with MockServer({}, host="0.0.0.0", name="e0") as e0, MockServer({}, host="0.0.0.0", name="e1") as e1:
        project = _up(make_project, {"urls": [f"http://{bridge}:{e.port}" for e in (e0, e1)]}, "dockerurls")
        sent = 0
        while not (e0.journal() and e1.journal()) and sent < 20:  # round robin: both endpoints are hosts
            assert _send(project, f"/u{sent}")["response"]["status"] == 200
            sent += 1
        paths = sorted(e["path"] for server in (e0, e1) for e in server.journal())
        assert e0.journal() and e1.journal() and paths == sorted(f"/u{i}" for i in range(sent))
        assert project.hlocal("down").returncode == 0


def test_a_loopback_url_is_refused_on_docker_with_the_way_out(make_project, docker_images) -> None:
    project = make_project({"gateway": {"port": 0}, "services": [
        {"name": "llm", "kind": "static", "host": "llm", "port": 80, "urls": ["http://127.0.0.1:9001"]}]},
        name="dockerloop", runtime="docker")
    up = project.hlocal("up")
    assert up.returncode == 2, up
    assert "services[0].urls[0] is 127.0.0.1, which on the docker runtime is the gateway container itself" in up.stderr
    assert "mock: {replicas: N}" in up.stderr and "Traceback" not in up.stderr
    assert project.state() is None and docker_objects(project.name) == []


@pytest.mark.parametrize("gateway, said", [
    ({"mcp_server": {"enable": True, "match_list": [
        {"match_rule_domain": "*", "match_rule_path": "/mcp", "match_rule_type": "prefix"}]}},
     "gateway.mcp_server (MCP's SSE transport) needs the native runtime"),
])
def test_what_docker_still_lacks_is_refused_by_name(make_project, docker_images, gateway, said) -> None:
    project = make_project({"gateway": {"port": 0, **gateway}}, name="dockerlacks", runtime="docker")
    check = project.hlocal("check", "--runtime", "docker")
    assert check.returncode == 0 and "native runtime only" in check.stdout, check  # said before `up` too
    up = project.hlocal("up")
    assert up.returncode == 2 and said in up.stderr and "--runtime native" in up.stderr, up
    assert project.state() is None and docker_objects(project.name) == []
