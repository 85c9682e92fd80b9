"""A Redis-using wasm-go plugin on stock Envoy (native runtime): its commands reach a real redis-server
through the adapted module and hlocal's relay; get_log_level answers the stack's wasm log level."""

from __future__ import annotations

import http.client
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from support import Project, wait_for

pytestmark = pytest.mark.slow

LIMIT = 3
REDIS = {"host": "redis.internal", "port": 6379, "timeout": 2000}


@pytest.fixture(scope="module")
def stack(module_projects, sdk_plugin_wasm) -> Project:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.fail("redis-server and redis-cli must be installed (apt-get install redis-server)")
    project = module_projects(
        {"gateway": {"port": 0, "wasm_log_level": "debug"},
         "plugins": [{"name": "rediscounter", "wasm": "rediscounter.wasm",
                      "config": {"redis": REDIS, "limit": LIMIT, "window": 300, "key_header": "x-user"}},
                     {"name": "debuglog", "wasm": "debuglog.wasm", "config": {}}],
         "services": [{"name": "cache", "kind": "redis", **{k: REDIS[k] for k in ("host", "port")}}]},
        files={"rediscounter.wasm": sdk_plugin_wasm("rediscounter"), "debuglog.wasm": sdk_plugin_wasm("debuglog")},
        name="redisemu", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def _redis_cli(project: Project, *args: str) -> str:
    port = project.state()["services"]["cache"]["host_port"]
    done = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _request(project: Project, *headers: str) -> dict:
    args = ["request", "GET", "/counted"]
    for header in headers:
        args += ["-H", header]
    result = project.hlocal(*args, "--json")
    assert result.returncode == 0, result
    return result.json()


def test_requests_past_the_limit_get_429_and_the_counter_lives_in_redis(stack: Project) -> None:
    for n in range(1, LIMIT + 1):
        doc = _request(stack, "x-user: alice")
        assert doc["response"]["status"] == 200, doc
        upstream = doc["upstream"]["headers"]
        assert upstream["x-redis-count"] == [str(n)]  # INCR round trip
        assert upstream["x-redis-last"] == ["/counted"]  # SET then GET round trip
    doc = _request(stack, "x-user: alice")
    assert doc["response"]["status"] == 429
    assert doc["upstream"] is None or not doc["upstream"]
    assert _redis_cli(stack, "GET", "hlocal:count:alice") == str(LIMIT + 1)
    assert 0 < int(_redis_cli(stack, "TTL", "hlocal:count:alice")) <= 300  # EXPIRE round trip
    assert _redis_cli(stack, "GET", "hlocal:last:alice") == "/counted"
    assert _request(stack, "x-user: bob")["response"]["status"] == 200  # a key of its own


def test_concurrent_requests_each_get_their_own_redis_reply(stack: Project) -> None:
    port = stack.state()["gateway_port"]

    def one(i: int) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("GET", f"/concurrent/{i}", headers={"x-user": f"user{i}"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(one, range(32)))
    assert statuses == [200] * 32
    for i in range(32):  # every reply reached the request that asked (no crossed tokens)
        assert _redis_cli(stack, "GET", f"hlocal:count:user{i}") == "1"
        assert _redis_cli(stack, "GET", f"hlocal:last:user{i}") == f"/concurrent/{i}"


def test_a_redis_error_reaches_the_plugin_as_an_error(stack: Project) -> None:
    doc = _request(stack, "x-user: carol", "x-redis-fail: 1")
    assert doc["response"]["status"] == 503
    assert "ERR unknown command" in doc["response"]["body"]


def test_get_log_level_answers_the_stack_wasm_log_level(stack: Project) -> None:
    doc = _request(stack, "x-user: dave")
    assert doc["upstream"]["headers"]["x-debuglog-level"] == ["1"]  # debug, as Higress would answer
    logs = stack.hlocal("logs", "--plugin", "--tail", "200")
    assert "debuglog: debug line for /counted" in logs.stdout
    assert "debuglog: trace line" not in logs.stdout


def test_check_says_how_redis_is_provided(stack: Project) -> None:
    check = stack.hlocal("check", "--json")
    assert check.returncode == 0, check
    plugins = {p["name"]: p for p in check.json()["plugins"]}
    redis = plugins["rediscounter"]
    assert redis["runnable"] and any("Redis relay" in a for a in redis["adaptations"])
    [emulation] = [e for e in redis["emulations"] if e["key"] == "redis"]
    assert "relay" in emulation["hlocal"] and not emulation["refused"] and emulation["differs"]
    assert [e["key"] for e in plugins["debuglog"]["emulations"]] == ["get_log_level"]


def test_redis_down_is_a_failed_call_for_the_plugin(stack: Project) -> None:
    # Last: it stops the stack's redis-server; the relay (its parent) stops with it, so `status`
    # shows the service dead while the gateway keeps answering, as Higress does without its Redis.
    port = stack.state()["services"]["cache"]["host_port"]
    subprocess.run(["redis-cli", "-p", str(port), "SHUTDOWN", "NOSAVE"], capture_output=True, timeout=10)
    gateway = http.client.HTTPConnection("127.0.0.1", stack.state()["gateway_port"], timeout=30)
    try:
        gateway.request("GET", "/counted", headers={"x-user": "erin"})
        response = gateway.getresponse()
        body = response.read().decode()
    finally:
        gateway.close()
    assert response.status == 503
    assert "cannot connect to redis cluster" in body

    def cache_state() -> str | None:
        status = stack.hlocal("status", "--json")
        state = next(c for c in status.json()["components"] if c["name"] == "svc-cache")["state"]
        return state if state != "running" else None

    assert wait_for(cache_state, 30, "svc-cache to be reported not running")
