"""Eleven official Higress plugins not exercised elsewhere in tests/, built from Higress's source, loaded
together into one real Envoy by `hlocal up` (native runtime), each configured as its README_EN.md's
example (alibaba/higress plugins/wasm-go/extensions/<plugin>/README_EN.md) and scoped to a route of its
own by a `_match_route_` rule, so one request each shows the plugin acted.

The census of every official plugin (not refused, adapted, valid): test_official_plugins.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from support import Project

pytestmark = pytest.mark.slow

KEY1, KEY2 = "2bda943c-ba2b-11ec-ba07-00163e1250b5", "c8c8e9ca-558e-4a2d-bb62-e700dcc40e35"
CONSUMERS = {"key-auth": [{"credential": KEY1, "name": "consumer1"}, {"credential": KEY2, "name": "consumer2"}],
             "basic-auth": [{"credential": "admin:123456", "name": "consumer1"},
                            {"credential": "guest:abc", "name": "consumer2"}]}
# plugin -> (route prefix, global config, the route's rule config). Global config only where the README
# keeps consumers there (global_auth: false: only routes with a rule authenticate).
PLUGINS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    # The README's example omits in_header/in_query, one of which the plugin requires (parseGlobalConfig).
    "key-auth": ("/keyauth", {"global_auth": False, "consumers": CONSUMERS["key-auth"], "keys": ["apikey", "x-api-key"],
                              "in_header": True}, {"allow": ["consumer1"]}),
    "basic-auth": ("/basicauth", {"global_auth": False, "consumers": CONSUMERS["basic-auth"]},
                   {"allow": ["consumer1"]}),
    "ip-restriction": ("/ip", {}, {"ip_source_type": "header", "ip_header_name": "x-real-ip",
                                   "deny": ["10.0.0.1", "192.169.0.0/16"]}),
    "request-block": ("/block", {}, {"block_urls": ["swagger.html", "foo=bar"], "case_sensitive": False}),
    "bot-detect": ("/bots", {}, {"deny": ["spd-tools.*"]}),
    "cors": ("/cors", {}, {"allow_origins": ["*"], "allow_methods": ["*"], "allow_headers": ["*"],
                           "expose_headers": ["*"], "allow_credentials": False, "max_age": 7200}),
    "custom-response": ("/mock", {}, {"rules": [{"status_code": 418, "headers": ["x-mock=hlocal"],
                                                 "body": '{"hello":"world"}'}]}),
    "cache-control": ("/static", {}, {"suffix": "jpg|png|jpeg", "expires": 3600}),
    "traffic-tag": ("/tag", {}, {"defaultTagKey": "x-mse-tag", "defaultTagVal": "base", "conditionGroups": [
        {"headerName": "x-mse-tag", "headerValue": "gray", "logic": "and",
         "conditions": [{"conditionType": "header", "key": "role", "operator": "in", "value": ["user", "viewer"]}]}]}),
    "model-mapper": ("/mapper", {}, {"modelMapping": {"gpt-4o": "qwen-vl-plus"}}),
    "ai-prompt-decorator": ("/decorate", {}, {
        "prepend": [{"role": "system", "content": "Please answer the questions in English."}],
        "append": [{"role": "user", "content": "After answering each question, try to ask a follow-up question."}]}),
}
CHAT = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "Who are you?"}]})


@pytest.fixture(scope="module")
def stack(module_projects, higress_plugin_wasm) -> Project:
    plugins, routes, files = [], [], {}
    for name, (prefix, config, rule) in PLUGINS.items():
        route = prefix.strip("/")
        plugins.append({"name": name, "wasm": f"{name}.wasm", "config": config,
                        "rules": [{"match_route": [route], "config": rule}]})
        routes.append({"name": route, "prefix": prefix})
        files[f"{name}.wasm"] = higress_plugin_wasm(f"extensions/{name}")
    project = module_projects({"gateway": {"port": 0}, "plugins": plugins,
                               "routes": [*routes, {"name": "other", "prefix": "/"}]},
                              files=files, name="official", runtime="native")
    # Envoy compiles the eleven 7 MB modules one after the other on its main thread: about 35 s on an idle
    # 2-core machine, four minutes when it is busy; hence a deadline above the suite's default.
    up = project.hlocal("up", "--timeout", "600", timeout=660)
    assert up.returncode == 0, up
    return project


def request(project: Project, method: str, path: str, *headers: str, data: str | None = None) -> dict[str, Any]:
    args = ["request", method, path, "--json"]
    for header in headers:
        args += ["-H", header]
    if data is not None:
        args += ["-d", data, "-H", "content-type: application/json"]
    result = project.hlocal(*args)
    assert result.returncode == 0, result
    return result.json()


def status(doc: dict[str, Any]) -> int:
    return doc["response"]["status"]


def upstream_header(doc: dict[str, Any], name: str) -> list[str] | None:
    return (doc.get("upstream") or {}).get("headers", {}).get(name)


def response_header(doc: dict[str, Any], name: str) -> Any:
    return {k.lower(): v for k, v in doc["response"]["headers"].items()}.get(name)


def test_key_auth(stack: Project) -> None:
    assert status(request(stack, "GET", "/keyauth/test")) == 401
    assert status(request(stack, "GET", "/keyauth/test", f"x-api-key: {KEY2}")) == 403  # not in allow
    ok = request(stack, "GET", "/keyauth/test", f"x-api-key: {KEY1}")
    assert status(ok) == 200 and upstream_header(ok, "x-mse-consumer") == ["consumer1"], ok


def test_basic_auth(stack: Project) -> None:
    basic = lambda user: "authorization: Basic " + base64.b64encode(user.encode()).decode()  # noqa: E731
    assert status(request(stack, "GET", "/basicauth/test")) == 401
    assert status(request(stack, "GET", "/basicauth/test", basic("admin:abc"))) == 401
    assert status(request(stack, "GET", "/basicauth/test", basic("guest:abc"))) == 403
    ok = request(stack, "GET", "/basicauth/test", basic("admin:123456"))
    assert status(ok) == 200 and upstream_header(ok, "x-mse-consumer") == ["consumer1"], ok


def test_ip_restriction(stack: Project) -> None:
    assert status(request(stack, "GET", "/ip/x", "x-real-ip: 192.169.3.4")) == 403
    assert status(request(stack, "GET", "/ip/x", "x-real-ip: 10.0.0.2")) == 200


def test_request_block(stack: Project) -> None:
    assert status(request(stack, "GET", "/block/Swagger.html")) == 403
    assert status(request(stack, "GET", "/block/list?foo=Bar")) == 403
    assert status(request(stack, "GET", "/block/index.html")) == 200


def test_bot_detect(stack: Project) -> None:
    assert status(request(stack, "GET", "/bots/x", "user-agent: spd-tools/1.1")) == 403
    assert status(request(stack, "GET", "/bots/x", "user-agent: Mozilla/5.0 (X11; Linux x86_64)")) == 200


def test_cors(stack: Project) -> None:
    preflight = request(stack, "OPTIONS", "/cors/x", "origin: http://app.example.com",
                        "access-control-request-method: PUT")
    assert status(preflight) == 200 and not preflight.get("upstream"), preflight  # answered by the plugin
    assert response_header(preflight, "access-control-allow-origin") == "http://app.example.com", preflight
    assert response_header(preflight, "access-control-max-age") == "7200", preflight
    simple = request(stack, "GET", "/cors/x", "origin: http://app.example.com")
    assert status(simple) == 200 and simple["upstream"], simple
    assert response_header(simple, "access-control-allow-origin") == "http://app.example.com", simple
    assert response_header(request(stack, "GET", "/other/x", "origin: http://app.example.com"),
                           "access-control-allow-origin") is None


def test_custom_response(stack: Project) -> None:
    doc = request(stack, "GET", "/mock/anything")
    assert status(doc) == 418 and response_header(doc, "x-mock") == "hlocal", doc
    assert json.loads(doc["response"]["body"]) == {"hello": "world"}
    assert not doc.get("upstream")


def test_cache_control(stack: Project) -> None:
    png = request(stack, "GET", "/static/logo.png")
    # The plugin writes "maxAge=N" (cache-control/main.go), not the standard max-age=N: Higress does the same.
    assert status(png) == 200 and response_header(png, "cache-control") == "maxAge=3600", png
    assert response_header(png, "expires"), png
    assert response_header(request(stack, "GET", "/static/app.js"), "cache-control") is None


def test_traffic_tag(stack: Project) -> None:
    assert upstream_header(request(stack, "GET", "/tag/x", "role: user"), "x-mse-tag") == ["gray"]
    assert upstream_header(request(stack, "GET", "/tag/x", "role: admin"), "x-mse-tag") == ["base"]


def test_model_mapper(stack: Project) -> None:
    doc = request(stack, "POST", "/mapper/v1/chat/completions", data=CHAT)
    assert status(doc) == 200 and doc["upstream"]["json"]["model"] == "qwen-vl-plus", doc


def test_ai_prompt_decorator(stack: Project) -> None:
    doc = request(stack, "POST", "/decorate/v1/chat/completions", data=CHAT)
    messages = doc["upstream"]["json"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "user"], messages
    assert messages[0]["content"] == "Please answer the questions in English."
    assert messages[1]["content"] == "Who are you?" and messages[2]["content"].startswith("After answering")


def test_the_rules_keep_each_plugin_on_its_route(stack: Project) -> None:
    doc = request(stack, "POST", "/other/v1/chat/completions", "user-agent: spd-tools/1.1", "x-real-ip: 10.0.0.1",
                  data=CHAT)
    assert status(doc) == 200, doc  # no auth, no block, no mock
    assert doc["upstream"]["json"]["model"] == "gpt-4o" and len(doc["upstream"]["json"]["messages"]) == 1
    assert upstream_header(doc, "x-mse-tag") is None
