"""Request buffer limits as on Higress, on stock Envoy (native runtime): 413 where Higress answers it.

Higress's listener buffers 32 KiB (downstream.connectionBufferLimits); a plugin that buffers a
larger body without SetRequestBodyBufferLimit() gets Envoy's 413, one that raised the limit does not.
Stock Envoy cannot raise a limit from Wasm, so the adapted modules enforce it (adapt/shim.wat).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from support import Project

pytestmark = pytest.mark.slow

TOO_LARGE = (413, b"Payload Too Large")  # Envoy's own local reply (Code::PayloadTooLarge)
RESET = b"<stream reset after the response headers>"


def up(make_project, config: dict, files: dict[str, Path], name: str) -> Project:
    project = make_project({"gateway": {"port": 0}, **config}, files=files, name=name, runtime="native")
    result = project.hlocal("up", timeout=240)
    assert result.returncode == 0, result
    return project


def post(project: Project, path: str, body: bytes, headers: dict | None = None) -> tuple[int, bytes, dict]:
    url = f"http://127.0.0.1:{project.state()['gateway_port']}{path}"
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as reply:
            try:
                return reply.status, reply.read(), dict(reply.headers)
            except http.client.IncompleteRead:
                return reply.status, RESET, dict(reply.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)
    except (urllib.error.URLError, ConnectionError) as err:  # no answer: the assertion shows why
        return -1, repr(err).encode(), {}


def json_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes with the key the transformer rule replaces."""
    head, tail = b'{"a3":"old","pad":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


# -- (i) the official transformer buffering a body for a body rule ----------------------------------


def test_transformer_body_rule_gets_413_above_32_kib_as_on_higress(make_project, higress_plugin_wasm) -> None:
    project = up(make_project, {
        "plugins": [{"name": "transformer", "wasm": "transformer.wasm", "config": {"reqRules": [
            {"operate": "replace", "body": [{"key": "a3", "newValue": "t3-new", "value_type": "string"}]}]}}],
    }, {"transformer.wasm": higress_plugin_wasm("extensions/transformer")}, "bufxform")
    headers = {"content-type": "application/json"}

    status, reply, _ = post(project, "/post", json_body(20_000), headers)
    assert status == 200, reply[:300]
    assert json.loads(reply)["json"]["a3"] == "t3-new"  # the rule rewrote the buffered body

    # Envoy's limit is "more than 32768 buffered": exactly 32768 bytes pass, one more does not.
    status, reply, _ = post(project, "/post", json_body(32_768), headers)
    assert status == 200 and json.loads(reply)["json"]["a3"] == "t3-new"
    assert post(project, "/post", json_body(32_769), headers)[:2] == TOO_LARGE
    status, reply, response_headers = post(project, "/post", json_body(64_000), headers)
    assert (status, reply) == TOO_LARGE
    # As Envoy's own 413 (measured with a 32 KiB listener): text/plain, not the mock's JSON error.
    assert {k.lower(): v for k, v in response_headers.items()}["content-type"] == "text/plain"

    # gateway.downstream.connection_buffer_limits raises the listener limit as Higress's key does.
    project.config["gateway"]["downstream"] = {"connection_buffer_limits": 131072}
    project.write()
    assert project.hlocal("down").returncode == 0
    assert project.hlocal("up", timeout=240).returncode == 0
    status, reply, _ = post(project, "/post", json_body(64_000), headers)
    assert status == 200 and json.loads(reply)["json"]["a3"] == "t3-new"


def test_transformer_response_rules_fail_above_32_kib_as_on_higress(make_project, higress_plugin_wasm) -> None:
    json_type = {"content-type": "application/json"}
    stubs = [{"match": {"path": f"/{size}"}, "respond": {"headers": json_type, "body": json_body(size).decode()}}
             for size in (20_000, 64_000)]
    project = up(make_project, {
        "plugins": [{"name": "transformer", "wasm": "transformer.wasm", "config": {"respRules": [
            {"operate": "replace", "body": [{"key": "a3", "newValue": "t3-new", "value_type": "string"}]}]},
            # A rule mapping a body field into a header holds the response headers until the body is read.
            "rules": [{"match_route": ["held"], "config": {"respRules": [
                {"operate": "map", "mapSource": "body", "headers": [{"fromKey": "a3", "toKey": "x-a3"}]}]}}]}],
        "routes": [{"name": "held", "headers": {"x-held": "1"}}, {"name": "default", "prefix": "/"}],
        "backend": {"stubs": stubs},
    }, {"transformer.wasm": higress_plugin_wasm("extensions/transformer")}, "bufxformresp")

    status, reply, _ = post(project, "/20000", b"{}", json_type)
    assert status == 200 and json.loads(reply)["a3"] == "t3-new"  # the rule rewrote the buffered response
    status, reply, headers = post(project, "/20000", b"{}", {**json_type, "x-held": "1"})
    assert status == 200 and {k.lower(): v for k, v in headers.items()}["x-a3"] == "old"
    # Envoy's own outcomes when a response overflows: its headers already went out, so the stream is
    # reset; held headers, so a 500 takes the response's place.
    assert post(project, "/64000", b"{}", json_type)[:2] == (200, RESET)
    assert post(project, "/64000", b"{}", {**json_type, "x-held": "1"})[:2] == (500, b"Internal Server Error")


# -- (ii) a plugin paused at the request headers while the body arrives -------------------------------


def test_plugin_paused_at_headers_buffers_the_body_and_gets_413_unless_it_raised_the_limit(
        make_project, sdk_plugin_wasm) -> None:
    check = {"host": "check.internal", "port": 8080}
    project = up(make_project, {
        # On route "raised" the same plugin first calls SetRequestBodyBufferLimit(1 MiB).
        "plugins": [{"name": "pausebody", "wasm": "pausebody.wasm", "config": check,
                     "rules": [{"match_route": ["raised"], "config": {**check, "limit": 1 << 20}}]}],
        "routes": [{"name": "raised", "prefix": "/raised"}, {"name": "default", "prefix": "/"}],
        "services": [{"name": "check", "kind": "fqdn", "host": "check.internal", "port": 8080}],
    }, {"pausebody.wasm": sdk_plugin_wasm("pausebody")}, "bufpause")

    status, reply, _ = post(project, "/upload", b"y" * 20_000)
    assert status == 200, reply[:300]
    echoed = json.loads(reply)
    assert echoed["body"] == "pausebody saw 20000 bytes"
    assert echoed["headers"]["x-check-status"] == ["200"]  # resumed from the call's callback
    assert post(project, "/upload", b"y" * 64_000)[:2] == TOO_LARGE

    # After SetRequestBodyBufferLimit(1 MiB) the request buffers up to its own limit, and no further.
    status, reply, _ = post(project, "/raised/upload", b"y" * 64_000)
    assert status == 200, reply[:300]
    assert json.loads(reply)["body"] == "pausebody saw 64000 bytes"
    assert post(project, "/raised/upload", b"y" * ((1 << 20) + 1))[:2] == TOO_LARGE


# -- the official ai-proxy raises the limit to 100 MiB --------------------------------------------------


def test_ai_proxy_passes_a_5_mb_body_because_it_raised_the_limit(make_project, higress_plugin_wasm) -> None:
    project = up(make_project, {
        "plugins": [{"name": "ai-proxy", "wasm": "ai-proxy.wasm", "config": {"provider": {
            "type": "openai", "apiTokens": ["sk-test"],
            "openaiCustomUrl": "http://backend/v1/chat/completions"}}}],
    }, {"ai-proxy.wasm": higress_plugin_wasm("extensions/ai-proxy")}, "bufaiproxy")
    check = project.hlocal("check", "--json")
    (plugin,) = check.json()["plugins"]
    assert any(a.startswith("request buffer limit as on Higress") for a in plugin["adaptations"])  # enforced

    content = "z" * 5_000_000
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}).encode()
    status, reply, _ = post(project, "/v1/chat/completions", body, {"content-type": "application/json"})
    assert status == 200, reply[:300]
    echoed = json.loads(reply)
    assert echoed["path"] == "/v1/chat/completions"
    assert echoed["headers"]["authorization"] == ["Bearer sk-test"]  # ai-proxy processed the request
    assert echoed["body_size"] >= 5_000_000  # the whole body reached the backend
