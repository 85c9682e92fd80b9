"""Smoke tests for examples/hello: what the client gets and what the backend receives."""

import pytest

MOON = {"reqRules": [{"operate": "add", "headers": [{"key": "x-hello", "value": "moon"}]}]}


def test_greets_the_backend(gateway, upstream):
    response = gateway.get("/greet", headers={"x-user": "alice"})  # gateway: a requests.Session
    assert response.status_code == 200
    assert response.headers["x-hello-served"] == "yes"
    received = upstream.last()  # the request as the mock backend received it
    assert received.path == "/greet"
    assert received.headers["x-hello"] == "world"
    assert received.headers["x-hello-user"] == "alice"
    assert "x-user" not in received.headers


def test_drops_the_debug_parameter(gateway, upstream):
    gateway.get("/greet?debug=1&lang=en")
    assert upstream.last().query == {"lang": ["en"]}


def test_a_json_body_reaches_the_backend_unchanged(gateway, upstream):
    gateway.post("/orders", json={"item": "tea", "count": 2})
    assert upstream.last().json == {"item": "tea", "count": 2}


def test_the_admin_route_has_its_own_greeting(gateway, upstream):
    gateway.get("/admin/users")
    assert upstream.last().headers["x-hello"] == "admin"


@pytest.mark.hlocal_config(config=MOON)  # the rules from hlocal.yaml stay
def test_another_greeting_for_one_test(gateway, upstream):
    gateway.get("/greet")
    assert upstream.last().headers["x-hello"] == "moon"
    gateway.get("/admin/users")
    assert upstream.last().headers["x-hello"] == "admin"


@pytest.mark.hlocal_config(plugin="hello", config=MOON, rules=[])  # rules=[]: no rules in this test
def test_without_rules_for_one_test(gateway, upstream):
    gateway.get("/admin/users")
    assert upstream.last().headers["x-hello"] == "moon"


def test_the_greetings_are_back_afterwards(gateway, upstream):
    gateway.get("/greet")
    assert upstream.last().headers["x-hello"] == "world"
    gateway.get("/admin/users")
    assert upstream.last().headers["x-hello"] == "admin"


def test_the_plugin_logs_its_work(gateway, plugin_logs):
    gateway.get("/greet")
    plugin_logs.assert_logged(r"on http request headers")  # what the plugins logged in this test
    plugin_logs.assert_not_logged(r"\[(error|critical)\]")
