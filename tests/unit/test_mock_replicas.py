"""`mock.replicas` by value: the key's validation, the cluster and host table from where the replicas
listen, the typed state, the docker refusal, and probes' view of a replicated service."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from higress_local.wasm.adapt.upstream import TABLE_ADDRESS, upstream_table
from higress_local.config.project import parse_project
from higress_local.errors import ConfigError, CorruptState
from higress_local.probe.mockservice import MockService
from higress_local.probe.send import Exchange, service_received
from higress_local.probe.observe import Effects
from higress_local.render.endpoints import service_endpoints, uses_override_host
from higress_local.render.envoy import render_clusters
from higress_local.runtime.services import plan_docker, plan_native
from higress_local.state import ReplicaState, ServiceState, StackState

from .test_render import layout
from .test_state import sample

FILE = Path("/p/hlocal.yaml")


def project(mock: dict, **extra):
    service = {"name": "llm", "kind": "static", "host": "llm", "port": 80, "mock": mock, **extra}
    return parse_project({"services": [service]}, FILE)


@pytest.mark.parametrize("mock, where, problem", [
    ({"replicas": 0}, "services[0].mock.replicas", "0 is out of range 1..16"),
    ({"replicas": 17}, "services[0].mock.replicas", "17 is out of range 1..16"),
    ({"replicas": "3"}, "services[0].mock.replicas", "expected an integer"),
    ({"replicas": True}, "services[0].mock.replicas", "expected an integer"),
    ({"replicas": 3, "metrics": ["a 1\n"]}, "services[0].mock.metrics", "lists 1 metrics for 3 replicas"),
    ({"replicas": 2, "metrics": "a 1\n"}, "services[0].mock.metrics", "expected a list"),
    ({"replica": 2}, "services[0].mock.replica", "unknown key"),
])
def test_a_bad_replicas_key_names_its_path_with_a_hint(mock, where, problem):
    with pytest.raises(ConfigError) as caught:
        project(mock)
    assert caught.value.message.startswith(f"hlocal.yaml: {where}: ") and problem in caught.value.message
    assert caught.value.hint


def test_replicas_hint_says_the_range():
    with pytest.raises(ConfigError) as caught:
        project({"replicas": 0})
    assert "1 to 16" in caught.value.hint


def test_a_replica_may_not_share_its_process_name_with_another_service():
    data = {"services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80, "mock": {"replicas": 2}},
                         {"name": "llm-1", "kind": "static", "host": "other", "port": 80}]}
    with pytest.raises(ConfigError, match=r"services\[0\]\.mock\.replicas: replica 1 .* svc-llm-1"):
        parse_project(data, FILE)


def test_a_redis_service_takes_no_replicas():
    data = {"services": [{"name": "c", "kind": "redis", "host": "r", "port": 6379, "mock": {"replicas": 2}}]}
    with pytest.raises(ConfigError, match=r"services\[0\]\.mock: replicas and metrics are for mock services"):
        parse_project(data, FILE)


def test_one_plain_mock_stays_one_plain_cluster():
    [service] = project({}).services
    assert service.replicas == 1 and not service.lists_hosts
    lay = layout(services={"llm": ["127.0.0.1", 9000]})
    [cluster] = [c for c in render_clusters(project({}), lay) if c["name"] == "outbound|80||llm.static"]
    assert "load_balancing_policy" not in cluster


def test_replicas_become_the_hosts_of_one_cluster_with_each_replicas_metrics():
    p = project({"replicas": 3, "metrics": ["w 12\n", "w 0\n", ""]})
    spots = {"llm": [["127.0.0.1", 9001], ["127.0.0.1", 9002], ["127.0.0.1", 9003]]}
    lay = layout(services={"llm": ["127.0.0.1", 9001]}, replicas=spots)
    [cluster] = [c for c in render_clusters(p, lay) if c["name"] == "outbound|80||llm.static"]
    hosts = [h["endpoint"]["address"]["socket_address"]["port_value"]
             for h in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]]
    assert hosts == [9001, 9002, 9003] and "load_balancing_policy" in cluster
    assert uses_override_host(p.services)
    assert [(e.host, e.metrics) for e in service_endpoints(p.services[0], spots)] == [
        ("127.0.0.1:9001", "w 12\n"), ("127.0.0.1:9002", "w 0\n"), ("127.0.0.1:9003", "")]
    table = upstream_table(p.services, spots)
    count, name_at, name_len = struct.unpack_from("<III", table)
    name = table[name_at - TABLE_ADDRESS:name_at - TABLE_ADDRESS + name_len]
    assert count == 1 and name == b"outbound|80||llm.static"
    assert b'127.0.0.1:9002\x00{"health_status":"Healthy","metrics":"w 0\\n"}' in table
    assert upstream_table(p.services) == b""  # nowhere placed yet: nothing listed


def test_native_plans_a_mock_per_replica_with_its_own_ports(tmp_path):
    p = project({"replicas": 3})
    plan = plan_native(p, tmp_path)["llm"]
    assert [r.component for r in plan.replicas] == ["svc-llm-0", "svc-llm-1", "svc-llm-2"]
    assert len({r.port for r in plan.replicas} | {r.control_port for r in plan.replicas}) == 6
    assert plan.control_port is None and plan.port == plan.replicas[0].port
    assert plan.components() == ["svc-llm-0", "svc-llm-1", "svc-llm-2"]
    assert list(plan.journals()) == ["llm[0]", "llm[1]", "llm[2]"]


def test_docker_plans_each_replica_in_the_gateways_namespace_with_its_own_journal(tmp_path):
    from higress_local.runtime.services import replica_control_port

    plans = plan_docker(parse_project({"services": [
        {"name": "a", "kind": "static", "host": "a", "port": 80, "mock": {"replicas": 2}},
        {"name": "b", "kind": "static", "host": "b", "port": 80, "mock": {"metrics": ["w 1\n"]}}]}, FILE), tmp_path)
    a, b = plans["a"], plans["b"]
    assert a.components() == ["svc-a-0", "svc-a-1"] and b.components() == ["svc-b-0"]
    ports = [r.port for plan in (a, b) for r in plan.replicas]
    inside = ports + [replica_control_port(p) for p in ports]
    assert len(set(inside)) == 6  # every replica of every service its own ports in the one namespace
    assert a.address == b.address == "127.0.0.1" and a.port == ports[0]
    assert len({r.control_port for plan in (a, b) for r in plan.replicas}) == 3  # published journals
    assert list(a.journals()) == ["a[0]", "a[1]"]


def replicated_state() -> StackState:
    state = sample()
    state.services["llm"] = ServiceState(
        name="llm", kind="static", how="mock", component="svc-llm", cluster="outbound|80||llm.static",
        address="127.0.0.1", port=9001, replicas=[ReplicaState(0, "svc-llm-0", 9001, 9101),
                                                   ReplicaState(1, "svc-llm-1", 9002, 9102)])
    return state


def test_a_state_with_replicas_loads_back_equal(tmp_path):
    state = replicated_state()
    state.save(tmp_path)
    loaded = StackState.load(tmp_path)
    assert loaded == state and loaded.services["llm"].replicas[1].control_url == "http://127.0.0.1:9102"


def test_a_malformed_replica_is_corrupt_state(tmp_path):
    doc = json.loads(replicated_state().to_json())
    doc["services"]["llm"]["replicas"][1]["port"] = "9002"
    (tmp_path / "state.json").write_text(json.dumps(doc))
    with pytest.raises(CorruptState, match=r"services\.llm: replicas\[1\]: port"):
        StackState.load(tmp_path)


def test_the_stack_api_reads_each_replica_and_refuses_what_is_not_there():
    service = MockService(replicated_state(), "llm")
    assert [(r.label, r.host, r.control_url) for r in service.replicas] == [
        ("llm[0]", "127.0.0.1:9001", "http://127.0.0.1:9101"), ("llm[1]", "127.0.0.1:9002", "http://127.0.0.1:9102")]
    assert service.replica(1).journal().control_url == "http://127.0.0.1:9102"
    with pytest.raises(ConfigError, match="no replica 2"):
        service.replica(2)
    with pytest.raises(ConfigError, match="2 replicas, each with its own journal"):
        service.journal()
    with pytest.raises(ConfigError, match="not an hlocal mock"):
        MockService(replicated_state(), "cache")
    with pytest.raises(ConfigError, match="no service 'nope'"):
        MockService(replicated_state(), "nope")


def test_expect_services_sees_what_any_replica_received():
    exchange = Exchange(method="POST", url="http://127.0.0.1:1/x", request_headers=[], request_body=None)
    exchange.effects = Effects(service_calls={"llm[0]": [{"seq": 1, "path": "/a"}], "llm[1]": [{"seq": 1, "path": "/b"}],
                                              "other": [{"seq": 5, "path": "/c"}]})
    exchange.received, exchange.received_by = {"seq": 1, "path": "/b"}, "llm[1]"
    assert sorted(c["path"] for c in service_received(exchange, "llm")) == ["/a", "/b"]
    exchange.effects = None  # without observation: the forwarded request alone
    assert service_received(exchange, "llm") == [{"seq": 1, "path": "/b"}]


def test_a_saved_restart_key_equals_the_same_projects_so_stubs_reload_in_place(tmp_path):
    """state.json turns tuples (urls, mock.metrics) into lists: the key compares like with like."""
    from higress_local.runtime.reload import restart_reasons
    from higress_local.runtime.stage import restart_key

    p = parse_project({"services": [
        {"name": "llm", "kind": "static", "host": "llm", "port": 80, "mock": {"replicas": 2, "metrics": ["a", "b"]}},
        {"name": "up", "kind": "static", "host": "up", "port": 80, "urls": ["http://10.0.0.1:80"]}]}, FILE)
    state = sample()
    state.restart_key = restart_key(p)
    state.save(tmp_path)
    assert restart_reasons(p, StackState.load(tmp_path)) == []
    more = parse_project({"services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80,
                                        "mock": {"replicas": 3}}]}, FILE)
    assert restart_reasons(more, StackState.load(tmp_path)) == ["services changed (added, removed or re-pointed)"]


def test_render_prints_a_mock_command_per_replica(tmp_path):
    from higress_local.project.render_stack import render_stack

    p = parse_project({"services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80,
                                     "mock": {"replicas": 2}}]}, tmp_path / "hlocal.yaml")
    rendered = render_stack(p, "native", str(tmp_path / "out"))
    mocks = [line for line in rendered.instructions if "--name llm-" in line]
    assert [("--name llm-0" in m, "--name llm-1" in m) for m in mocks] == [(True, False), (False, True)]
    ports = [m.split("--port ")[1].split()[0] for m in mocks] + [m.split("--control-port ")[1].split()[0] for m in mocks]
    assert len(set(ports)) == 4 and "0" not in ports  # each replica its own port and control port
