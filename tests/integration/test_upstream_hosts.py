"""Official ai-load-balancer on stock Envoy (native runtime): the adapted module lists the hosts of a
service with `urls` (proxy_get_upstream_hosts) and pins the one its policy picks
(proxy_set_upstream_override_host -> the cluster's override-host policy). Each endpoint is a mock
of its own, so its journal says which requests it got."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
from contextlib import ExitStack

import pytest

from support import Project

pytestmark = pytest.mark.slow

PLUGIN = "extensions/ai-load-balancer"
REDIS = {"host": "redis.static", "port": 6379}
TABLE = "higress:global_least_request_table:"


def _gauge(name: str, value: float) -> str:
    return f"# TYPE {name} gauge\n{name} {value}\n"


@pytest.fixture(scope="module")
def endpoints():
    """Three mock endpoints, each with its own journal."""
    from higress_local.mock import MockServer

    with ExitStack() as stack:
        yield [stack.enter_context(MockServer({"stubs": []}, host="127.0.0.1", name=f"llm{i}")) for i in range(3)]


def _service(endpoints, waiting: list[float]) -> dict:
    urls = [{"url": f"http://127.0.0.1:{e.port}", "metrics": _gauge("vllm:num_requests_waiting", w)}
            for e, w in zip(endpoints, waiting)]
    return {"name": "llm", "kind": "static", "host": "llm", "port": 80, "urls": urls}


def _post(project: Project, n: int) -> list[int]:
    statuses = []
    for i in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", project.state()["gateway_port"], timeout=30)
        try:
            body = json.dumps({"model": "qwen", "messages": [{"role": "user", "content": f"hi {i}"}]})
            conn.request("POST", "/v1/chat/completions", body=body, headers={"content-type": "application/json"})
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        finally:
            conn.close()
    return statuses


def _counts(endpoints) -> list[int]:
    return [len(e.journal()) for e in endpoints]


def _clear(endpoints) -> None:
    for e in endpoints:
        e.clear_journal()


@pytest.fixture(scope="module")
def metrics_stack(module_projects, higress_plugin_wasm, endpoints) -> Project:
    project = module_projects(
        {"gateway": {"port": 0},
         "plugins": [{"name": "lb", "wasm": "lb.wasm",
                      "config": {"lb_type": "endpoint", "lb_policy": "endpoint_metrics",
                                 "lb_config": {"metric_policy": "least",
                                               "target_metric": "vllm:num_requests_waiting"}}}],
         "routes": [{"name": "chat", "prefix": "/", "service": "llm"}],
         "services": [_service(endpoints, [12, 0, 20])]},
        files={"lb.wasm": higress_plugin_wasm(PLUGIN)}, name="lbmetrics", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def test_endpoint_metrics_pins_the_endpoint_with_the_least_waiting(metrics_stack: Project, endpoints) -> None:
    _clear(endpoints)
    assert _post(metrics_stack, 6) == [200] * 6
    # least of 12 / 0 / 20 waiting: only the second is within (max - min) / 3 of the least
    assert _counts(endpoints) == [0, 6, 0]
    # The router drops hlocal's override header after the load balancer read it.
    assert not any("x-hlocal-upstream-host" in e["headers"] for e in endpoints[1].journal())


def test_without_a_model_the_plugin_leaves_envoy_balancing(metrics_stack: Project, endpoints) -> None:
    _clear(endpoints)
    port = metrics_stack.state()["gateway_port"]
    # A client cannot pin a host with hlocal's header: it is removed before any filter runs.
    spoof = {"content-type": "application/json", "x-hlocal-upstream-host": f"127.0.0.1:{endpoints[0].port}"}
    for _ in range(6):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", "/v1/other", body="{}", headers=spoof)
            assert conn.getresponse().status == 200
        finally:
            conn.close()
    counts = _counts(endpoints)
    # The cluster's round robin (one per Envoy worker): spread, no host pinned.
    assert sum(counts) == 6 and max(counts) <= 4, counts
    assert not any("x-hlocal-upstream-host" in e["headers"] for m in endpoints for e in m.journal())


@pytest.fixture(scope="module")
def least_request_stack(module_projects, higress_plugin_wasm, endpoints) -> Project:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli must be installed (apt-get install redis-server)")
    project = module_projects(
        {"gateway": {"port": 0},
         "plugins": [{"name": "lb", "wasm": "lb.wasm",
                      "config": {"lb_type": "endpoint", "lb_policy": "global_least_request",
                                 "lb_config": {"serviceFQDN": REDIS["host"], "servicePort": REDIS["port"],
                                               "username": "default", "password": ""}}}],
         "routes": [{"name": "chat", "prefix": "/", "service": "llm"}],
         "services": [_service(endpoints, [0, 0, 0]), {"name": "cache", "kind": "redis", **REDIS}]},
        files={"lb.wasm": higress_plugin_wasm(PLUGIN)}, name="lbleast", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def _redis_cli(project: Project, *args: str) -> str:
    port = project.state()["services"]["cache"]["host_port"]
    done = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_global_least_request_pins_the_endpoint_redis_counts_least(least_request_stack: Project, endpoints) -> None:
    project = least_request_stack
    assert _post(project, 1) == [200]  # the plugin creates the route's table in Redis
    keys = _redis_cli(project, "--scan", "--pattern", TABLE + "*").split()
    [key] = [k for k in keys if "last_clean" not in k]
    hosts = [f"127.0.0.1:{e.port}" for e in endpoints]
    _redis_cli(project, "HSET", key, hosts[0], "5", hosts[1], "7", hosts[2], "0")
    _clear(endpoints)
    assert _post(project, 5) == [200] * 5
    assert _counts(endpoints) == [0, 0, 5]
    # The others' counts are untouched: the plugin counted only the host it pinned.
    assert _redis_cli(project, "HGET", key, hosts[0]) == "5"
    assert _redis_cli(project, "HGET", key, hosts[1]) == "7"


def test_check_says_how_the_upstream_hosts_are_provided(metrics_stack: Project) -> None:
    check = metrics_stack.hlocal("check", "--json")
    assert check.returncode == 0, check
    [plugin] = check.json()["plugins"]
    assert plugin["runnable"] and any("override-host policy" in a for a in plugin["adaptations"])
    [emulation] = [e for e in plugin["emulations"] if e["key"] == "upstream_hosts"]
    assert not emulation["refused"] and "x-hlocal-upstream-host" in emulation["hlocal"] and emulation["differs"]


def _chat(project: Project, messages: list[dict]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", project.state()["gateway_port"], timeout=30)
    try:
        conn.request("POST", "/v1/chat/completions", body=json.dumps({"model": "qwen", "messages": messages}),
                     headers={"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_prefix_cache_keeps_a_conversation_on_one_endpoint(module_projects, higress_plugin_wasm,
                                                          endpoints) -> None:
    project = module_projects(
        {"gateway": {"port": 0},
         "plugins": [{"name": "lb", "wasm": "lb.wasm",
                      "config": {"lb_type": "endpoint", "lb_policy": "prefix_cache",
                                 "lb_config": {"serviceFQDN": REDIS["host"], "servicePort": REDIS["port"],
                                               "username": "default", "password": ""}}}],
         "routes": [{"name": "chat", "prefix": "/", "service": "llm"}],
         "services": [_service(endpoints, [0, 0, 0]), {"name": "cache", "kind": "redis", **REDIS}]},
        files={"lb.wasm": higress_plugin_wasm(PLUGIN)}, name="lbprefix", runtime="native")
    assert (up := project.hlocal("up")).returncode == 0, up
    _clear(endpoints)
    conversation = [{"role": "user", "content": "hi"}]
    for turn in ("tell me a story", "shorter", "in French", "again", "thanks"):
        assert _chat(project, conversation) == 200
        conversation += [{"role": "assistant", "content": "..."}, {"role": "user", "content": turn}]
    # Each longer turn starts with the earlier one: the prefix kept in Redis pins the same endpoint
    # (Envoy's round robin would have spread the five).
    assert sorted(_counts(endpoints)) == [0, 0, 5]
