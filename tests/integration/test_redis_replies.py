"""Every RESP reply type reaches a wasm-go plugin's Redis callback as Higress's Envoy delivers it.

Higress's Envoy hands the plugin the raw RESP bytes of the reply (buffer type 9) and wasm-go parses
them with tidwall/resp (higress-group/wasm-go pkg/wrapper/redis_wrapper.go). The SDK plugin
`redisecho` runs a command given in a header through a real redis-server and answers with the reply
as its callback saw it; the official replay-protection plugin shows the nil reply that SET NX gives.
"""

from __future__ import annotations

import json
import shutil

import pytest

from support import Project

pytestmark = pytest.mark.slow

REDIS = {"host": "redis.internal", "port": 6379, "timeout": 2000}
REPLAY = {"redis": {"service_name": "redis.internal", "service_port": 6379, "timeout": 2000},
          "nonce_header": "x-nonce", "nonce_ttl": 900, "validate_base64": False, "reject_code": 429}


@pytest.fixture(scope="module")
def stack(module_projects, sdk_plugin_wasm, higress_plugin_wasm) -> Project:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server must be installed (apt-get install redis-server)")
    project = module_projects(
        {"gateway": {"port": 0, "wasm_log_level": "debug"},
         "plugins": [{"name": "redisecho", "wasm": "redisecho.wasm", "config": {"redis": REDIS}},
                     {"name": "replay-protection", "wasm": "replay.wasm", "config": REPLAY}],
         "services": [{"name": "cache", "kind": "redis", "host": REDIS["host"], "port": REDIS["port"]}]},
        files={"redisecho.wasm": sdk_plugin_wasm("redisecho"),
               "replay.wasm": higress_plugin_wasm("extensions/replay-protection")},
        name="redisreplies", runtime="native")
    up = project.hlocal("up")
    assert up.returncode == 0, up
    return project


def _request(project: Project, *headers: str) -> dict:
    args = ["request", "GET", "/replies"]
    for header in headers:
        args += ["-H", header]
    result = project.hlocal(*args, "--json")
    assert result.returncode == 0, result
    return result.json()["response"]


def _reply(project: Project, *command: str) -> dict:
    """The reply to `command` as redisecho's callback saw it."""
    response = _request(project, "x-redis-command: " + json.dumps(list(command)))
    assert response["status"] == 200, response
    return json.loads(response["body"])


def _bulk(value: str) -> dict:
    return {"type": "BulkString", "null": False, "value": value}


def _int(value: int) -> dict:
    return {"type": "Integer", "null": False, "value": value}


def test_replies_of_every_resp_type_reach_the_callback_as_on_higress(stack: Project) -> None:
    assert _reply(stack, "SET", "k:str", "hello") == {"type": "SimpleString", "null": False, "value": "OK"}
    assert _reply(stack, "GET", "k:str") == _bulk("hello")
    assert _reply(stack, "GET", "k:missing") == {"type": "BulkString", "null": True, "value": ""}
    assert _reply(stack, "SET", "k:str", "again", "NX") == {"type": "BulkString", "null": True, "value": ""}
    assert _reply(stack, "INCRBY", "k:int", "-7") == _int(-7)
    assert _reply(stack, "SET", "k:empty", "") == {"type": "SimpleString", "null": False, "value": "OK"}
    assert _reply(stack, "GET", "k:empty") == _bulk("")
    assert _reply(stack, "LRANGE", "k:nolist", "0", "-1") == {"type": "Array", "null": False, "value": []}
    assert _reply(stack, "RPUSH", "k:list", "a", "") == _int(2)
    assert _reply(stack, "LRANGE", "k:list", "0", "-1") == {"type": "Array", "null": False,
                                                           "value": [_bulk("a"), _bulk("")]}
    # BLPOP on an empty list past its timeout answers a nil array (*-1).
    assert _reply(stack, "BLPOP", "k:nolist", "0.01") == {"type": "Array", "null": True}
    big = _reply(stack, "EVAL", "return string.rep('ab', 131072)", "0")  # a 256 KB bulk string
    assert big["type"] == "BulkString" and big["value"] == "ab" * 131072
    error = _reply(stack, "INCR", "k:str")
    assert error["type"] == "Error" and error["value"] == "ERR value is not an integer or out of range"
    assert _reply(stack, "EVAL", "return {1, {'x', {}}, redis.call('GET', 'k:missing')}", "0") == {
        "type": "Array", "null": False,
        "value": [_int(1), {"type": "Array", "null": False, "value": [_bulk("x"), {
            "type": "Array", "null": False, "value": []}]}, {"type": "BulkString", "null": True, "value": ""}]}


def test_a_replayed_nonce_is_refused_by_the_official_replay_protection(stack: Project) -> None:
    # SET NX EX answers nil for a known nonce: the plugin's callback must see it to answer 429.
    # GET on purpose: the plugin returns ActionPause (StopIteration under ABI 0.2.100), so with a
    # request body wasm-go's body callback returns Continue and the request goes upstream before
    # Redis answers. Higress's Envoy does the same (higress-group/higress#2215 and #2353: 0.2.100
    # passes StopIteration through); plugins that must wait return HeaderStopAllIterationAndWatermark.
    first = _request(stack, "x-nonce: hlocal-nonce-0001")
    assert first["status"] == 200, first
    again = _request(stack, "x-nonce: hlocal-nonce-0001")
    assert again["status"] == 429, again
    assert again["body"] == "Replay Attack Detected"
    assert _request(stack, "x-nonce: hlocal-nonce-0002")["status"] == 200
