"""`mock: {replicas: N}`: hlocal runs N mock endpoints for one service (native runtime), all hosts of the
service's one cluster and of the official ai-load-balancer's host list (with `mock.metrics`), each with
its own journal, readable per endpoint in `hlocal request`, through Stack.service() and in the state.
The docker runtime's replicas: tests/integration/test_docker_services.py."""

from __future__ import annotations

import json

import pytest

from support import Project, processes_mentioning

pytestmark = pytest.mark.slow
pytest_plugins = ["pytester"]

PLUGIN = "extensions/ai-load-balancer"
CHAT = json.dumps({"model": "qwen", "messages": [{"role": "user", "content": "hi"}]})


def _waiting(value: float) -> str:
    return f"# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting {value}\n"


@pytest.fixture(scope="module")
def replicas_stack(module_projects, higress_plugin_wasm) -> Project:
    project = module_projects(
        {"gateway": {"port": 0},
         "plugins": [{"name": "lb", "wasm": "lb.wasm",
                      "config": {"lb_type": "endpoint", "lb_policy": "endpoint_metrics",
                                 "lb_config": {"metric_policy": "least",
                                               "target_metric": "vllm:num_requests_waiting"}}}],
         "routes": [{"name": "chat", "prefix": "/", "service": "llm"}],
         "services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80,
                       "mock": {"replicas": 3, "metrics": [_waiting(12), _waiting(0), _waiting(20)]}}]},
        files={"lb.wasm": higress_plugin_wasm(PLUGIN)}, name="replicas", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    assert "llm[2]" in up.stdout  # the summary lists each replica with its journal
    return project


@pytest.fixture
def llm(replicas_stack: Project):
    """The service's endpoints through the Stack API the pytest plugin's hlocal_stack offers."""
    from higress_local.stack import Stack

    stack = Stack.from_file(replicas_stack.path, attach=True).start()
    service = stack.service("llm")
    for replica in service.replicas:
        replica.journal().clear()
    return service


def _chat(project: Project) -> dict:
    done = project.hlocal("request", "POST", "/v1/chat/completions", "-H", "content-type: application/json",
                          "-d", CHAT, "--json")
    assert done.returncode == 0, done
    return done.json()


def test_the_plugin_pins_the_replica_whose_metrics_say_least_waiting(replicas_stack: Project, llm) -> None:
    for _ in range(5):
        exchange = _chat(replicas_stack)
        assert exchange["response"]["status"] == 200 and exchange["received_by"] == "llm[1]"
    # least of 12 / 0 / 20 waiting: only replica 1 is within (max - min) / 3 of the least
    assert llm.counts() == [0, 5, 0]
    [entry, *_] = llm.replica(1).journal().journal()
    assert entry["path"] == "/v1/chat/completions" and "x-hlocal-upstream-host" not in entry["headers"]


def test_hlocal_request_names_the_replica_that_received_the_call(replicas_stack: Project, llm) -> None:
    done = replicas_stack.hlocal("request", "POST", "/v1/chat/completions", "-H",
                                 "content-type: application/json", "-d", CHAT)
    assert done.returncode == 0, done
    assert "service llm[1] received: POST /v1/chat/completions" in done.stdout, done.stdout
    assert llm.counts() == [0, 1, 0]


def test_without_a_model_the_cluster_spreads_requests_over_the_replicas(replicas_stack: Project, llm) -> None:
    seen: list[str] = []
    while len(set(seen)) < 2 and len(seen) < 20:  # Envoy's round robin (each worker its own): no pin
        seen.append(_post_other(replicas_stack)["received_by"])
    counts = llm.counts()
    assert len(set(seen)) > 1 and set(seen) <= {"llm[0]", "llm[1]", "llm[2]"}, seen
    assert counts == [seen.count(f"llm[{i}]") for i in range(3)]  # each replica's journal has what it got


def _post_other(project: Project) -> dict:
    done = project.hlocal("request", "POST", "/v1/other", "-d", "{}", "--json")
    assert done.returncode == 0, done
    return done.json()


def test_state_and_status_list_each_replica_with_its_own_ports(replicas_stack: Project, llm) -> None:
    service = replicas_stack.state()["services"]["llm"]
    replicas = service["replicas"]
    assert [r["component"] for r in replicas] == ["svc-llm-0", "svc-llm-1", "svc-llm-2"]
    assert len({r["port"] for r in replicas} | {r["control_port"] for r in replicas}) == 6
    assert [r.host for r in llm.replicas] == [f"127.0.0.1:{r['port']}" for r in replicas]
    status = replicas_stack.hlocal("status", "--json")
    assert status.returncode == 0, status
    components = {c["name"]: c for c in status.json()["components"]}
    for r in replicas:
        assert components[r["component"]]["state"] == "running"
        assert components[r["component"]]["ports"] == {"http": r["port"], "control": r["control_port"]}


def test_down_stops_every_replica(make_project) -> None:
    project = make_project({"gateway": {"port": 0}, "routes": [{"name": "r", "prefix": "/", "service": "llm"}],
                            "services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80,
                                          "mock": {"replicas": 2}}]}, name="replicasdown", runtime="native")
    assert (up := project.hlocal("up")).returncode == 0, up
    pids = [project.state()["components"][f"svc-llm-{i}"]["pid"] for i in range(2)]
    assert all(pid in {p for p, _ in processes_mentioning(str(project.path / ".hlocal"))} for pid in pids)
    down = project.hlocal("down")
    assert down.returncode == 0, down
    assert "svc-llm-0" in down.stdout and "svc-llm-1" in down.stdout
    assert project.leftovers() == []


def test_stubs_reload_into_every_replica_and_more_replicas_need_a_restart(make_project) -> None:
    service = {"name": "llm", "kind": "static", "host": "llm", "port": 80,
               "mock": {"replicas": 2, "stubs": [{"match": {"path": "/s"}, "respond": {"status": 201}}]}}
    project = make_project({"gateway": {"port": 0}, "routes": [{"name": "r", "prefix": "/", "service": "llm"}],
                            "services": [service]}, name="replicasreload", runtime="native")
    assert (up := project.hlocal("up")).returncode == 0, up
    service["mock"]["stubs"][0]["respond"]["status"] = 202
    project.write()
    reload = project.hlocal("reload")
    assert reload.returncode == 0 and "service llm stubs updated" in reload.stdout, reload
    answered: dict[str, set[int]] = {}
    for _ in range(20):  # round robin (each Envoy worker its own): both replicas well before 20 requests
        exchange = project.hlocal("request", "GET", "/s", "--json").json()
        answered.setdefault(exchange["received_by"], set()).add(exchange["response"]["status"])
        if len(answered) == 2:
            break
    assert answered == {"llm[0]": {202}, "llm[1]": {202}}  # both replicas answer with the new stub
    service["mock"]["replicas"] = 3
    project.write()
    refused = project.hlocal("reload")
    assert refused.returncode == 2 and "services changed" in refused.stderr, refused


def test_the_pytest_plugin_reads_each_replicas_journal(make_project, pytester) -> None:
    config = {"name": f"ptr-{pytester.path.name}".lower().replace("_", "-")[:63], "runtime": "native",
              "gateway": {"port": 0}, "routes": [{"name": "r", "prefix": "/", "service": "llm"}],
              "services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80, "mock": {"replicas": 2}}]}
    project = Project(path=pytester.path, config=config)
    project.write()
    make_project.made.append(project)  # its cleanup insists nothing is left
    pytester.makepyfile(test_replicas="""
        def test_each_replica_has_its_own_journal(hlocal_stack, gateway):
            llm = hlocal_stack.service("llm")
            sent = 0
            while not all(llm.counts()) and sent < 20:  # Envoy's round robin reaches both
                assert gateway.get(f"/r{sent}").status_code == 200
                sent += 1
            assert all(llm.counts()) and sum(llm.counts()) == sent
            paths = [e["path"] for r in llm.replicas for e in r.journal().journal()]
            assert sorted(paths) == sorted(f"/r{i}" for i in range(sent))
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=300)
    result.assert_outcomes(passed=1)
