"""Probe evaluation: what came back and what the backend saw, against what was expected."""

from __future__ import annotations

import json
from typing import Any

import pytest

from higress_local.config.project import Expect, UpstreamExpect
from higress_local.probe.send import Exchange, Mismatch, evaluate, evaluate_upstream, json_subset


def exchange(status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"",
             upstream: dict[str, Any] | None = None) -> Exchange:
    return Exchange(method="GET", url="http://127.0.0.1:10000/get?x=1", request_headers=[("x-a", "1")],
                    request_body=None, status=status, response_headers=headers or {}, response_body=body,
                    upstream=upstream)


def entry(**overrides: Any) -> dict[str, Any]:
    """A backend journal entry as the mock records it."""
    doc = {
        "method": "POST",
        "path": "/post",
        "query": {"k": ["v1", "v2"], "one": ["x"]},
        "headers": {"x-multi": ["a", "b"], "x-one": ["v"], "host": ["foo.bar.com"]},
        "body": '{"a": 1, "b": {"c": [1, 2]}}',
        "json": {"a": 1, "b": {"c": [1, 2]}},
    }
    doc.update(overrides)
    return doc


def whats(mismatches: list[Mismatch]) -> list[str]:
    return [m.what for m in mismatches]


# -- the response ------------------------------------------------------------------------------


def test_an_exchange_meeting_every_expectation_has_no_mismatches():
    expect = Expect(status=200, headers={"content-type": "application/json"}, headers_absent=("x-secret",),
                    body_contains='"ok"', json={"ok": True},
                    upstream=UpstreamExpect(headers={"x-one": "v"}, method="POST", path="/post"))
    got = exchange(headers={"content-type": "application/json"}, body=b'{"ok": true, "n": 1}', upstream=entry())
    assert evaluate(expect, got) == []


def test_nothing_expected_nothing_checked():
    assert evaluate(Expect(), exchange(status=503, body=b"x")) == []


def test_a_status_mismatch_reports_expected_and_actual():
    assert evaluate(Expect(status=200), exchange(status=403)) == [Mismatch("status", 200, 403)]


def test_response_headers_must_be_equal():
    got = exchange(headers={"x-a": "1, 2", "x-b": "B"})
    assert evaluate(Expect(headers={"x-a": "1, 2", "x-b": "B"}), got) == []
    assert evaluate(Expect(headers={"x-a": "1"}), got) == [Mismatch("response header x-a", "1", "1, 2")]
    assert evaluate(Expect(headers={"x-b": "b"}), got) == [Mismatch("response header x-b", "b", "B")]


def test_a_missing_response_header_is_reported_as_none():
    assert evaluate(Expect(headers={"x-c": "v"}), exchange()) == [Mismatch("response header x-c", "v", None)]


def test_a_response_header_that_must_be_absent():
    got = exchange(headers={"server": "envoy"})
    assert evaluate(Expect(headers_absent=("x-powered-by",)), got) == []
    assert evaluate(Expect(headers_absent=("server",)), got) == [Mismatch("response header server", "(absent)", "envoy")]


def test_body_contains():
    got = exchange(body=b"hello world")
    assert evaluate(Expect(body_contains="lo wo"), got) == []
    assert evaluate(Expect(body_contains="bye"), got) == [Mismatch("response body", "contains 'bye'", "hello world")]


def test_a_long_body_is_shortened_in_the_mismatch():
    (mismatch,) = evaluate(Expect(body_contains="nope"), exchange(body=b"x" * 500))
    assert mismatch.actual == "x" * 200 + "…"


def test_response_json_is_a_subset_match():
    got = exchange(body=json.dumps({"a": 1, "b": {"c": 2, "d": 3}}).encode())
    assert evaluate(Expect(json={"b": {"c": 2}}), got) == []
    assert evaluate(Expect(json={"b": {"c": 3}}), got) == [
        Mismatch("response json", {"b": {"c": 3}}, {"a": 1, "b": {"c": 2, "d": 3}})]


def test_response_json_on_a_body_that_is_not_json():
    assert evaluate(Expect(json={"a": 1}), exchange(body=b"<html>")) == [Mismatch("response json", {"a": 1}, None)]


def test_every_mismatch_is_reported_in_order():
    expect = Expect(status=200, headers={"x": "1"}, headers_absent=("y",), body_contains="z", json={"j": 1},
                    upstream=UpstreamExpect(method="GET"))
    got = exchange(status=500, headers={"y": "2"}, body=b'{"j": 2}', upstream=entry())
    assert whats(evaluate(expect, got)) == [
        "status", "response header x", "response header y", "response body", "response json", "upstream method"]


# -- json_subset -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "result"),
    [
        ({}, {"a": 1}, True),
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": {"b": {"c": 1}}}, {"a": {"b": {"c": 1, "d": 2}, "e": 3}}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": 1}, {"b": 1}, False),
        ({"a": None}, {}, False),
        ({"a": None}, {"a": None}, True),
        ({"a": {"b": 1}}, {"a": 1}, False),
        ({"a": 1}, [{"a": 1}], False),
        ({"a": 1}, None, False),
        ([1, 2], [1, 2], True),
        ([1, 2], [1, 2, 3], False),
        ([2, 1], [1, 2], False),
        ([{"a": 1}], [{"a": 1, "b": 2}], False),
        ({"l": [1]}, {"l": [1, 2]}, False),
        ("x", "x", True),
        (1, 1.0, True),
        ("1", 1, False),
    ],
)
def test_json_subset(expected, actual, result):
    assert json_subset(expected, actual) is result


# -- upstream ------------------------------------------------------------------------------------


def test_an_upstream_header_string_must_be_one_of_the_received_values():
    got = entry()
    assert evaluate_upstream(UpstreamExpect(headers={"x-multi": "a"}), got) == []
    assert evaluate_upstream(UpstreamExpect(headers={"x-multi": "b"}), got) == []
    assert evaluate_upstream(UpstreamExpect(headers={"x-multi": "c"}), got) == [
        Mismatch("upstream header x-multi", "c", ["a", "b"])]


def test_an_upstream_header_list_must_equal_the_received_values_in_order():
    got = entry()
    assert evaluate_upstream(UpstreamExpect(headers={"x-multi": ("a", "b")}), got) == []
    assert evaluate_upstream(UpstreamExpect(headers={"x-multi": ("b", "a")}), got) == [
        Mismatch("upstream header x-multi", ["b", "a"], ["a", "b"])]
    assert evaluate_upstream(UpstreamExpect(headers={"x-multi": ("a",)}), got) == [
        Mismatch("upstream header x-multi", ["a"], ["a", "b"])]
    assert evaluate_upstream(UpstreamExpect(headers={"x-one": ("v",)}), got) == []


def test_a_missing_upstream_header_is_reported_as_none():
    assert evaluate_upstream(UpstreamExpect(headers={"x-gone": "v"}), entry()) == [
        Mismatch("upstream header x-gone", "v", None)]
    assert evaluate_upstream(UpstreamExpect(headers={"x-gone": ()}), entry()) == []


def test_upstream_headers_absent():
    assert evaluate_upstream(UpstreamExpect(headers_absent=("x-removed",)), entry()) == []
    assert evaluate_upstream(UpstreamExpect(headers_absent=("x-one", "x-multi")), entry()) == [
        Mismatch("upstream header x-one", "(absent)", "v"),
        Mismatch("upstream header x-multi", "(absent)", ["a", "b"]),
    ]


def test_upstream_method_and_path():
    assert evaluate_upstream(UpstreamExpect(method="POST", path="/post"), entry()) == []
    assert evaluate_upstream(UpstreamExpect(method="GET", path="/get"), entry()) == [
        Mismatch("upstream method", "GET", "POST"), Mismatch("upstream path", "/get", "/post")]


def test_upstream_query_string_is_one_of_and_list_is_exact():
    got = entry()
    assert evaluate_upstream(UpstreamExpect(query={"k": "v2", "one": ("x",)}), got) == []
    assert evaluate_upstream(UpstreamExpect(query={"k": ("v1",)}), got) == [
        Mismatch("upstream query k", ["v1"], ["v1", "v2"])]
    assert evaluate_upstream(UpstreamExpect(query={"missing": "m"}), got) == [
        Mismatch("upstream query missing", "m", None)]
    assert evaluate_upstream(UpstreamExpect(query={"one": "y"}), got) == [Mismatch("upstream query one", "y", "x")]


def test_upstream_body_contains():
    assert evaluate_upstream(UpstreamExpect(body_contains='"a": 1'), entry()) == []
    assert whats(evaluate_upstream(UpstreamExpect(body_contains="zzz"), entry())) == ["upstream body"]
    assert evaluate_upstream(UpstreamExpect(body_contains="x"), entry(body=None)) == [
        Mismatch("upstream body", "contains 'x'", "")]


def test_upstream_json_is_a_subset_match_with_lists_compared_whole():
    assert evaluate_upstream(UpstreamExpect(json={"b": {"c": [1, 2]}}), entry()) == []
    assert evaluate_upstream(UpstreamExpect(json={"b": {"c": [1]}}), entry()) == [
        Mismatch("upstream json", {"b": {"c": [1]}}, {"a": 1, "b": {"c": [1, 2]}})]
    assert evaluate_upstream(UpstreamExpect(json={"a": 1}), entry(json=None)) == [
        Mismatch("upstream json", {"a": 1}, None)]


def test_received_false_passes_when_the_request_never_arrived():
    assert evaluate_upstream(UpstreamExpect(received=False), None) == []


def test_received_false_fails_when_the_backend_saw_the_request():
    assert evaluate_upstream(UpstreamExpect(received=False, headers={"x-one": "nope"}), entry()) == [
        Mismatch("upstream", "no request", "POST /post")]


@pytest.mark.parametrize("received", [None, True])
def test_a_request_that_never_reached_the_backend_fails_any_upstream_expectation(received):
    assert evaluate_upstream(UpstreamExpect(received=received), None) == [
        Mismatch("upstream", "the request to reach the backend", "it never arrived")]


@pytest.mark.parametrize("received", [None, True])
def test_received_alone_passes_when_the_backend_saw_the_request(received):
    assert evaluate_upstream(UpstreamExpect(received=received), entry()) == []


def test_evaluate_passes_the_journal_entry_to_the_upstream_check():
    blocked = Expect(status=403, upstream=UpstreamExpect(received=False))
    assert evaluate(blocked, exchange(status=403, upstream=None)) == []
    assert evaluate(blocked, exchange(status=403, upstream=entry())) == [Mismatch("upstream", "no request", "POST /post")]


def test_an_entry_without_headers_or_query_is_treated_as_empty():
    bare = {"method": "GET", "path": "/"}
    assert evaluate_upstream(UpstreamExpect(headers_absent=("x",), query={}), bare) == []
    assert evaluate_upstream(UpstreamExpect(headers={"x": "1"}, query={"q": "1"}), bare) == [
        Mismatch("upstream header x", "1", None), Mismatch("upstream query q", "1", None)]


# -- the exchange itself ---------------------------------------------------------------------------


def test_exchange_path_and_text():
    got = exchange(body="héllo".encode())
    assert got.path == "/get?x=1"
    assert got.response_text() == "héllo"
    assert got.response_json() is None
    assert exchange(body=b"[1]").response_json() == [1]


def test_exchange_to_dict_is_json_serialisable():
    doc = exchange(status=201, body=b"ok", upstream=entry()).to_dict()
    assert json.loads(json.dumps(doc))["upstream"] == entry()
    assert doc["request"]["headers"] == [("x-a", "1")]
    assert doc["response"] == {"status": 201, "headers": {}, "body": "ok"}
    assert doc["request"]["body"] is None


# -- what services received (expect.services.NAME) -----------------------------------------------

def test_service_expectation_passes_when_one_call_matches() -> None:
    from higress_local.probe.observe import Effects

    ex = exchange()
    ex.effects = Effects(service_calls={"auth": [entry(seq=3, path="/other"), entry(seq=4, path="/check")]})
    assert evaluate(Expect(services={"auth": UpstreamExpect(path="/check")}), ex) == []
    missed = evaluate(Expect(services={"auth": UpstreamExpect(path="/nope", method="GET")}), ex)
    assert whats(missed) == ["service auth method", "service auth path"]
    assert missed[1].actual == "/check"  # the newest call's differences


def test_service_expectation_counts_the_forwarded_request_of_a_service_route() -> None:
    ex = exchange()
    ex.received, ex.received_by = entry(seq=9), "users"
    assert evaluate(Expect(services={"users": UpstreamExpect(headers={"x-one": "v"})}), ex) == []
    # expect.upstream means the backend: it received nothing here
    assert whats(evaluate(Expect(upstream=UpstreamExpect()), ex)) == ["upstream"]


def test_service_expectation_received_false_and_nothing_received() -> None:
    from higress_local.probe.observe import Effects

    ex = exchange()
    ex.effects = Effects(service_calls={"auth": [entry(seq=1)]})
    assert whats(evaluate(Expect(services={"auth": UpstreamExpect(received=False)}), ex)) == ["service auth"]
    assert evaluate(Expect(services={"cache": UpstreamExpect(received=False)}), ex) == []
    nothing = evaluate(Expect(services={"cache": UpstreamExpect()}), ex)
    assert [(m.what, m.actual) for m in nothing] == [("service cache", "it received none")]


def test_services_expectation_parses_with_upstream_keys(tmp_path) -> None:
    from higress_local.config.project import parse_project
    from higress_local.errors import ConfigError

    doc = {"probes": [{"name": "p", "request": {"path": "/"},
                       "expect": {"services": {"auth": {"path": "/check", "headers": {"X-A": ["1", "2"]},
                                                        "received": True}}}}]}
    probe = parse_project(doc, tmp_path / "hlocal.yaml").probes[0]
    assert probe.expect.services["auth"] == UpstreamExpect(path="/check", headers={"x-a": ("1", "2")}, received=True)
    doc["probes"][0]["expect"]["services"]["auth"]["statuss"] = 1
    with pytest.raises(ConfigError, match="statuss"):
        parse_project(doc, tmp_path / "hlocal.yaml")
