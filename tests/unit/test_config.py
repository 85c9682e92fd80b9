"""hlocal.yaml parsing: defaults, the full shape, Higress `_rules_`, and errors that name the key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from higress_local.config.project import (
    Backend, Gateway, Plugin, Route, Rule, find_config, load_project, parse_project, sanitise_name,
)
from higress_local.errors import ConfigError

FILE = Path("/x/proj/hlocal.yaml")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "transformer" / "hlocal.yaml"

FULL = """\
name: demo
runtime: native
gateway:
  flavor: envoy
  port: 18080
  admin_port: 18081
  log_level: debug
  wasm_log_level: trace
plugins:
  - name: headers
    wasm: build/headers.wasm
    fail_open: true
    config: {add: {x-a: "1"}}
    rules:
      - match_route: [api]
        config: {add: {x-b: "2"}}
      - match_domain: "*.example.com"
        config: {}
  - name: deny
    wasm: /abs/deny.wasm
routes:
  - name: api
    domains: [api.local]
    prefix: /api
    headers: {X-Tenant: acme}
    timeout_ms: 1500
  - name: exact
    domains: [api.local]
    path: /health
  - name: rx
    regex: "/v[0-9]+/.*"
backend:
  stubs:
    - match: {path: /teapot}
      respond: {status: 418, body: short and stout}
probes:
  - name: adds a header
    request:
      method: post
      path: /api/x
      headers: {X-Multi: [a, b], X-One: v}
      json: {k: v}
    expect:
      status: 200
      headers: {Content-Type: application/json}
      headers_absent: [X-Secret]
      body_contains: ok
      json: {ok: true}
      upstream:
        headers: {X-A: "1", X-List: [p, q]}
        headers_absent: [X-Gone]
        method: post
        path: /api/x
        query: {k: v, many: [a, b]}
        body_contains: k
        json: {k: v}
        received: true
  - name: blocked
    request: {path: /deny}
    expect:
      status: 403
      upstream: {received: false}
"""


def parse(data: Any):
    return parse_project(data, FILE)


def config_error(data: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(data)
    return info.value


def plugin(**extra: Any) -> dict[str, Any]:
    return {"name": "a", "wasm": "a.wasm", **extra}


def probe(request: dict[str, Any] | None = None, expect: dict[str, Any] | None = None, name: str = "p") -> dict:
    return {"name": name, "request": request or {}, "expect": expect or {}}


# -- defaults -------------------------------------------------------------------------------


def test_an_empty_mapping_gets_every_default():
    project = parse({})
    assert project.name == "proj"
    assert project.file == FILE
    assert project.root == Path("/x/proj")
    assert project.state_dir == Path("/x/proj/.hlocal/proj")
    assert project.runtime == "auto"
    assert project.gateway == Gateway(flavor=None, port=10000, admin_port=0, log_level="info", wasm_log_level="debug")
    assert project.plugins == ()
    assert project.routes == (Route(name="default", domains=("*",), prefix="/"),)
    assert project.backend == Backend(stubs=())
    assert project.probes == ()


def test_the_default_name_is_the_sanitised_directory_name():
    project = parse_project({}, Path("/x/My Plugin.v2__/hlocal.yaml"))
    assert project.name == "my-plugin-v2"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ai-proxy", "ai-proxy"),
        ("AI_Proxy", "ai_proxy"),
        ("--weird..name--", "weird-name"),
        ("___", "hlocal"),
        ("é", "hlocal"),
        ("x" * 80, "x" * 63),
    ],
)
def test_sanitise_name(raw, expected):
    assert sanitise_name(raw) == expected


def test_a_route_without_a_match_key_matches_every_path():
    (route,) = parse({"routes": [{"name": "r"}]}).routes
    assert route == Route(name="r", domains=("*",), prefix="/", path=None, regex=None, headers={}, timeout_ms=None)


def test_a_path_or_regex_route_has_no_prefix():
    routes = parse({"routes": [{"name": "p", "path": "/x"}, {"name": "r", "regex": "/a.*"}]}).routes
    assert (routes[0].prefix, routes[0].path, routes[0].regex) == (None, "/x", None)
    assert (routes[1].prefix, routes[1].path, routes[1].regex) == (None, None, "/a.*")


def test_a_probe_with_only_a_name_sends_get_slash_and_expects_nothing():
    (p,) = parse({"probes": [probe()]}).probes
    assert (p.request.method, p.request.path, p.request.headers, p.request.body, p.request.json) == (
        "GET", "/", {}, None, None)
    assert p.expect.status is None and p.expect.upstream is None


# -- the full shape -------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["FAIL_CLOSED", "fail_closed"])
def test_failure_policy_is_read_in_either_case(written: str):
    (only,) = parse({"plugins": [plugin(failure_policy=written)]}).plugins
    assert only.failure_policy == "FAIL_CLOSED"


def test_a_full_document_parses_into_the_models(tmp_path):
    (tmp_path / "hlocal.yaml").write_text(FULL)
    project = load_project(cwd=tmp_path)

    assert project.file == (tmp_path / "hlocal.yaml").resolve()
    assert (project.name, project.runtime) == ("demo", "native")
    assert project.gateway == Gateway(flavor="envoy", port=18080, admin_port=18081, log_level="debug",
                                      wasm_log_level="trace")

    headers, deny = project.plugins
    assert headers.wasm == (tmp_path / "build" / "headers.wasm").resolve()
    assert headers.fail_open is True and deny.fail_open is False
    assert (headers.failure_policy, deny.failure_policy) == ("FAIL_OPEN", "FAIL_RELOAD")  # fail_open alone means open
    assert headers.config == {"add": {"x-a": "1"}}
    assert headers.rules == (
        Rule(match_route=("api",), config={"add": {"x-b": "2"}}),
        Rule(match_domain=("*.example.com",), config={}),
    )
    assert deny.wasm == Path("/abs/deny.wasm") and deny.config == {} and deny.rules == ()
    assert project.plugin("deny") is deny

    api, exact, rx = project.routes
    assert api == Route(name="api", domains=("api.local",), prefix="/api", headers={"x-tenant": "acme"},
                        timeout_ms=1500)
    assert (exact.domains, exact.prefix, exact.path) == (("api.local",), None, "/health")
    assert (rx.domains, rx.regex) == (("*",), "/v[0-9]+/.*")

    assert project.backend.stubs == ({"match": {"path": "/teapot"}, "respond": {"status": 418, "body": "short and stout"}},)

    adds, blocked = project.probes
    assert adds.name == "adds a header"
    assert adds.request.method == "POST"
    assert adds.request.headers == {"x-multi": ("a", "b"), "x-one": "v"}
    assert adds.request.json == {"k": "v"} and adds.request.body is None
    assert adds.expect.status == 200
    assert adds.expect.headers == {"content-type": "application/json"}
    assert adds.expect.headers_absent == ("x-secret",)
    assert (adds.expect.body_contains, adds.expect.json) == ("ok", {"ok": True})
    up = adds.expect.upstream
    assert up.headers == {"x-a": "1", "x-list": ("p", "q")}
    assert up.headers_absent == ("x-gone",)
    assert (up.method, up.path, up.body_contains, up.json, up.received) == ("POST", "/api/x", "k", {"k": "v"}, True)
    assert up.query == {"k": "v", "many": ("a", "b")}
    assert blocked.expect.upstream.received is False


def test_the_shipped_example_parses():
    project = load_project(EXAMPLE)
    assert project.name == "transformer-demo"
    (transformer,) = project.plugins
    assert transformer.wasm == EXAMPLE.parent / "build" / "transformer.wasm"
    assert [r.match_route for r in transformer.rules] == [("query",), ("body",)]
    assert [r.name for r in project.routes] == ["query", "body", "default"]
    assert project.probes[0].request.headers["x-dedupe-first"] == ("1", "2", "3")
    assert project.probes[0].expect.upstream.headers["x-add-append"] == ("host-foo.bar", "path-get")


def test_relative_wasm_paths_resolve_against_the_yaml_directory_not_the_cwd(tmp_path, monkeypatch):
    project_dir = tmp_path / "proj"
    project_dir.mkdir()
    (project_dir / "hlocal.yaml").write_text("plugins:\n  - {name: a, wasm: ../mods/a.wasm}\n")
    monkeypatch.chdir(tmp_path)
    project = load_project("proj/hlocal.yaml")
    assert project.plugins[0].wasm == (tmp_path / "mods" / "a.wasm").resolve()


def test_probe_headers_given_as_lists_become_tuples_and_strings_stay_strings():
    (p,) = parse({"probes": [probe(
        request={"headers": {"X-Dup": ["1", "2", 3], "X-One": "v", "X-Num": 7}},
        expect={"upstream": {"headers": {"X-Dup": ["1"]}, "query": {"q": ["a", "b"], "r": "c"}}},
    )]}).probes
    assert p.request.headers == {"x-dup": ("1", "2", "3"), "x-one": "v", "x-num": "7"}
    assert p.expect.upstream.headers == {"x-dup": ("1",)}
    assert p.expect.upstream.query == {"q": ("a", "b"), "r": "c"}


def test_query_names_keep_their_case():
    (p,) = parse({"probes": [probe(expect={"upstream": {"query": {"UserId": "1"}}})]}).probes
    assert p.expect.upstream.query == {"UserId": "1"}


# -- rules become Higress `_rules_` ------------------------------------------------------------


def test_configuration_without_rules_is_the_global_config_alone():
    (p,) = parse({"plugins": [plugin(config={"a": 1})]}).plugins
    assert p.configuration() == {"a": 1}
    assert "_rules_" not in p.configuration()


def test_rules_become_higress_rules_and_the_global_keys_stay():
    (p,) = parse({"plugins": [plugin(
        config={"global": True, "n": 1},
        rules=[
            {"match_route": ["r1", "r2"], "config": {"n": 2}},
            {"match_domain": ["*.example.com", "a.com"], "config": {"n": 3}},
            {"match_service": "svc.dns:8080", "config": {"n": 4}},
            {"match_route_prefix": ["api-"], "config": {"n": 5, "nested": {"x": [1]}}},
            {"match_route": "r3", "match_domain": "b.com"},
        ],
    )]}).plugins
    assert p.configuration() == {
        "global": True,
        "n": 1,
        "_rules_": [
            {"_match_route_": ["r1", "r2"], "n": 2},
            {"_match_domain_": ["*.example.com", "a.com"], "n": 3},
            {"_match_service_": ["svc.dns:8080"], "n": 4},
            {"_match_route_prefix_": ["api-"], "n": 5, "nested": {"x": [1]}},
            {"_match_route_": ["r3"], "_match_domain_": ["b.com"]},
        ],
    }


def test_configuration_does_not_mutate_the_plugin():
    p = Plugin(name="a", wasm=Path("/a.wasm"), config={"k": 1}, rules=(Rule(match_route=("r",)),))
    p.configuration()["k"] = 2
    assert p.configuration() == {"k": 1, "_rules_": [{"_match_route_": ["r"]}]}
    assert p.config == {"k": 1}


def test_unknown_plugin_name_lists_the_known_ones():
    project = parse({"plugins": [plugin(name="a"), plugin(name="b")]})
    with pytest.raises(ConfigError) as info:
        project.plugin("c")
    assert "no plugin named 'c'" in info.value.message
    assert info.value.hint == "plugins: a, b"


# -- errors name the key path -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([1, 2], "hlocal.yaml: expected a mapping, got a list"),
        ("text", "hlocal.yaml: expected a mapping, got a string"),
        ({1: 2}, "keys must be strings, got 1"),
        ({"name": "Bad Name"}, "name: 'Bad Name' is not a valid stack name"),
        ({"runtime": "podman"}, "runtime: 'podman' is not one of auto, native, docker"),
        ({"gateway": []}, "gateway: expected a mapping, got a list"),
        ({"gateway": {"flavor": "nginx"}}, "gateway.flavor: 'nginx' is not one of envoy, higress"),
        ({"gateway": {"port": "10000"}}, "gateway.port: expected an integer, got a string"),
        ({"gateway": {"port": True}}, "gateway.port: expected an integer, got true or false"),
        ({"gateway": {"port": 1.5}}, "gateway.port: expected an integer, got a number"),
        ({"gateway": {"port": 70000}}, "gateway.port: 70000 is out of range 0..65535"),
        ({"gateway": {"admin_port": -1}}, "gateway.admin_port: -1 is out of range 0..65535"),
        ({"gateway": {"log_level": "loud"}}, "gateway.log_level: 'loud' is not one of trace"),
        ({"plugins": {"name": "a"}}, "plugins: expected a list, got a mapping"),
        ({"plugins": [None]}, "plugins[0]: expected a mapping, got nothing (null)"),
        ({"plugins": [{"wasm": "a.wasm"}]}, "plugins[0].name: is required"),
        ({"plugins": [{"name": "a"}]}, "plugins[0].wasm: is required"),
        ({"plugins": [plugin(name="A B")]}, "plugins[0].name: 'A B' is not a valid plugin name"),
        ({"plugins": [plugin(wasm=["a"])]}, "plugins[0].wasm: expected a string, got a list"),
        ({"plugins": [plugin(config=[1])]}, "plugins[0].config: expected a mapping"),
        ({"plugins": [plugin(config="k: v")]}, "plugins[0].config: expected a mapping, got a string"),
        ({"plugins": [plugin(fail_open="yes")]}, "plugins[0].fail_open: expected true or false, got a string"),
        ({"plugins": [plugin(fail_open=1)]}, "plugins[0].fail_open: expected true or false, got an integer"),
        ({"plugins": [plugin(failure_policy="reboot")]},
         "plugins[0].failure_policy: 'REBOOT' is not one of FAIL_RELOAD, FAIL_CLOSED, FAIL_OPEN"),
        ({"plugins": [plugin(failure_policy=True)]}, "plugins[0].failure_policy: expected a string"),
        ({"plugins": [plugin(fail_open=True, failure_policy="FAIL_CLOSED")]},
         "plugins[0].failure_policy: FAIL_CLOSED contradicts fail_open: true"),
        ({"plugins": [plugin(rules={"match_route": "r"})]}, "plugins[0].rules: expected a list, got a mapping"),
        ({"plugins": [plugin(rules=[{"config": {"a": 1}}])]},
         "plugins[0].rules[0]: a rule needs at least one of match_route, match_domain, match_service, match_route_prefix"),
        ({"plugins": [plugin(rules=[{"match_route": []}])]}, "plugins[0].rules[0]: a rule needs at least one of"),
        ({"plugins": [plugin(rules=[{"match_route": [["r"]]}])]},
         "plugins[0].rules[0].match_route[0]: expected a string, got a list"),
        ({"plugins": [plugin(rules=[{"match_route": "r", "config": [1]}])]},
         "plugins[0].rules[0].config: expected a mapping, got a list"),
        ({"plugins": [plugin(), plugin()]}, "plugins[1].name: duplicate plugin name 'a' (also at index 0)"),
        ({"routes": [{"name": "r", "regex": "("}]}, "routes[0].regex: '(' is not a regex Envoy accepts (RE2: missing )"),
        ({"routes": [{"name": "r", "prefix": "/a", "path": "/b"}]},
         "routes[0]: give one of prefix, path or regex, not prefix and path"),
        ({"routes": [{"name": "r", "path": "/a", "regex": "/b"}]},
         "routes[0]: give one of prefix, path or regex, not path and regex"),
        ({"routes": [{"name": "r", "prefix": "api"}]}, "routes[0].prefix: 'api' must start with /"),
        ({"routes": [{"name": "r", "path": "api"}]}, "routes[0].path: 'api' must start with /"),
        ({"routes": [{"prefix": "/"}]}, "routes[0].name: is required"),
        ({"routes": [{"name": "r", "headers": ["x"]}]}, "routes[0].headers: expected a mapping, got a list"),
        ({"routes": [{"name": "r", "timeout_ms": "1s"}]}, "routes[0].timeout_ms: expected an integer, got a string"),
        ({"routes": [{"name": "r"}, {"name": "r"}]}, "routes[1].name: duplicate route name 'r' (also at index 0)"),
        ({"routes": [{"name": "r1", "domains": ["a.com"]}, {"name": "r2", "domains": ["a.com", "b.com"]}]},
         "routes[1].domains: domain 'a.com' is also in routes[0] with a different domain list"),
        ({"routes": [{"name": "r", "domains": ["a.com", "b.com", "a.com"]}]},
         "routes[0].domains: domain 'a.com' is listed twice"),
        ({"routes": [{"name": "r1"}, {"name": "r2", "domains": ["*", "b.com"]}]},
         "routes[1].domains: domain '*' is also in routes[0]"),
        ({"backend": []}, "backend: expected a mapping, got a list"),
        ({"backend": {"stubs": {}}}, "backend.stubs: expected a list, got a mapping"),
        ({"backend": {"stubs": [{"match": {"paht": "/"}}]}}, "backend.stubs[0].match.paht: unknown field"),
        ({"backend": {"stubs": [{}, {"respond": {"status": 700}}]}},
         "backend.stubs[1].respond.status: expected an integer 100-599, got 700"),
        ({"probes": [probe(), probe()]}, "probes[1].name: duplicate probe name 'p' (also at index 0)"),
        ({"probes": [{"request": {}, "expect": {}}]}, "probes[0].name: is required"),
        ({"probes": [probe(request={"body": "x", "json": {}})]}, "probes[0].request: give body or json, not both"),
        ({"probes": [probe(request={"method": "FETCH"})]}, "probes[0].request.method: 'FETCH' is not one of GET"),
        ({"probes": [probe(request={"path": "x"})]}, "probes[0].request.path: 'x' must start with /"),
        ({"probes": [probe(request={"headers": {"x": {"a": 1}}})]},
         "probes[0].request.headers.x: expected a string, got a mapping"),
        ({"probes": [probe(request={"headers": {"x": ["a", None]}})]},
         "probes[0].request.headers.x[1]: is required"),
        ({"probes": [probe(expect={"status": 99})]}, "probes[0].expect.status: 99 is out of range 100..599"),
        ({"probes": [probe(expect={"status": "200"})]}, "probes[0].expect.status: expected an integer, got a string"),
        ({"probes": [probe(expect={"upstream": {"received": "no"}})]},
         "probes[0].expect.upstream.received: expected true or false, got a string"),
        ({"probes": [probe(expect={"upstream": []})]}, "probes[0].expect.upstream: expected a mapping, got a list"),
    ],
)
def test_bad_documents_name_the_key_path(data, fragment):
    error = config_error(data)
    assert fragment in error.message
    assert error.message.startswith("hlocal.yaml: ")
    assert error.hint


@pytest.mark.parametrize(
    ("data", "path", "suggestion"),
    [
        ({"gatway": {}}, "gatway", "gateway"),
        ({"gateway": {"prot": 1}}, "gateway.prot", "port"),
        ({"plugins": [plugin(confg={})]}, "plugins[0].confg", "config"),
        ({"plugins": [plugin(rules=[{"match_routes": ["r"]}])]}, "plugins[0].rules[0].match_routes", "match_route"),
        ({"routes": [{"name": "r", "prefx": "/"}]}, "routes[0].prefx", "prefix"),
        ({"backend": {"stub": []}}, "backend.stub", "stubs"),
        ({"probes": [probe(request={"header": {}})]}, "probes[0].request.header", "headers"),
        ({"probes": [probe(expect={"statuss": 200})]}, "probes[0].expect.statuss", "status"),
        ({"probes": [probe(expect={"upstream": {"recieved": False}})]}, "probes[0].expect.upstream.recieved",
         "received"),
    ],
)
def test_unknown_keys_suggest_the_closest_known_key(data, path, suggestion):
    error = config_error(data)
    assert error.message == f"hlocal.yaml: {path}: unknown key"
    assert f"did you mean '{suggestion}'?" in error.hint
    assert "known keys here:" in error.hint


def test_an_unknown_key_without_a_close_match_lists_the_known_keys_only():
    error = config_error({"zzzzzz": 1})
    assert error.message == "hlocal.yaml: zzzzzz: unknown key"
    assert "did you mean" not in error.hint
    assert error.hint == "known keys here: name, runtime, gateway, plugins, routes, backend, probes, services"


def test_an_integer_bounded_on_one_side_says_which_side():
    error = config_error({"routes": [{"name": "r", "timeout_ms": -1}]})
    assert "routes[0].timeout_ms: -1" in error.message
    assert error.message == "hlocal.yaml: routes[0].timeout_ms: -1 must be at least 0"


def test_stub_errors_point_at_the_stubs_section_of_the_readme():
    error = config_error({"backend": {"stubs": [{"respond": {"body": 1}}]}})
    assert error.message == "hlocal.yaml: backend.stubs[0].respond.body: expected a string (use json for other values)"
    assert "backend.stubs" in error.hint


def test_duplicate_names_say_how_to_fix_them():
    error = config_error({"plugins": [plugin(name="x"), plugin(name="y"), plugin(name="x")]})
    assert error.message == "hlocal.yaml: plugins[2].name: duplicate plugin name 'x' (also at index 0)"
    assert error.hint == "give each plugin name a distinct value"


def test_routes_sharing_the_same_domain_list_are_fine():
    routes = parse({"routes": [
        {"name": "a", "domains": ["x.com", "y.com"], "prefix": "/a"},
        {"name": "b", "domains": ["z.com"]},
        {"name": "c", "domains": ["x.com", "y.com"]},
    ]}).routes
    assert [r.domains for r in routes] == [("x.com", "y.com"), ("z.com",), ("x.com", "y.com")]


def test_a_domain_conflict_hint_says_what_to_do():
    error = config_error({"routes": [{"name": "a", "domains": "x.com"}, {"name": "b", "domains": ["y.com", "x.com"]}]})
    assert error.hint == "routes that share a domain must list exactly the same domains"


# -- files -------------------------------------------------------------------------------------


def load_text(tmp_path: Path, text: str) -> ConfigError:
    (tmp_path / "hlocal.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "hlocal.yaml")
    return info.value


def test_invalid_yaml_names_line_and_column(tmp_path):
    error = load_text(tmp_path, "name: demo\nplugins:\n  - name: a\n   wasm: x\n")
    assert error.message.startswith("hlocal.yaml: line 4, column 4: invalid YAML: ")
    assert error.hint == "fix the YAML syntax"


def test_an_unclosed_flow_list_is_reported_where_yaml_notices_it(tmp_path):
    error = load_text(tmp_path, "plugins:\n  - name: a\n    wasm: [x\n")
    assert "line 4, column 1: invalid YAML: expected ',' or ']'" in error.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_an_empty_file_is_an_error_with_a_hint(tmp_path, text):
    error = load_text(tmp_path, text)
    assert error.message == "hlocal.yaml: the file is empty"
    assert error.hint


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "nope.yaml")
    assert info.value.message == f"config file not found: {tmp_path / 'nope.yaml'}"
    assert info.value.hint == "check the -f path"


def test_no_hlocal_yaml_in_the_directory_says_how_to_get_one(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_project(cwd=tmp_path)
    assert info.value.message == f"no hlocal.yaml in {tmp_path}"
    assert "-f PATH" in info.value.hint


def test_a_directory_given_with_f_without_a_config_is_named(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path)
    assert info.value.message == f"config file not found: {tmp_path / 'hlocal.yaml'}"


def test_hlocal_yml_is_found_too(tmp_path):
    (tmp_path / "hlocal.yml").write_text("name: alt\n")
    assert load_project(cwd=tmp_path).name == "alt"
    assert load_project(tmp_path).name == "alt"
    assert find_config(None, cwd=tmp_path) == (tmp_path / "hlocal.yml").resolve()


def test_an_explicit_file_wins_over_the_cwd(tmp_path):
    (tmp_path / "hlocal.yaml").write_text("name: here\n")
    other = tmp_path / "other.yaml"
    other.write_text("name: there\n")
    assert load_project(other, cwd=tmp_path).name == "there"
    assert load_project(None, cwd=tmp_path).name == "here"


def test_errors_from_a_loaded_file_name_the_file(tmp_path):
    (tmp_path / "custom.yaml").write_text("gateway: {port: x}\n")
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "custom.yaml")
    assert info.value.message == "custom.yaml: gateway.port: expected an integer, got a string"


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path):
    (tmp_path / "hlocal.yaml").write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "hlocal.yaml")
    assert info.value.message.startswith(f"cannot read {tmp_path / 'hlocal.yaml'}")


def test_duplicate_yaml_key_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: a\ngateway:\n  port: 1\n  port: 2\n")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path / "hlocal.yaml")
    assert "line 4" in caught.value.message
    assert "duplicate key 'port' (first given on line 3)" in caught.value.message


# -- bounded input (issue 10): files, YAML size, what goes on the wire or to Envoy -------------


def test_an_alias_bomb_is_refused_at_load_naming_the_file_and_the_limit(tmp_path):
    laughs = ['    l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"    l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    (tmp_path / "custom.yaml").write_text("plugins:\n- name: p\n  wasm: p.wasm\n  config:\n" + "\n".join(laughs) + "\n")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path / "custom.yaml")
    assert caught.value.message == "custom.yaml: line 11: aliases expand the document past 1,000,000 values"


def test_deep_nesting_is_refused_at_load(tmp_path):
    error = load_text(tmp_path, "plugins: [{name: p, wasm: p.wasm, config: {x: " + "[" * 20000 + "]" * 20000 + "}}]\n")
    assert error.message == "hlocal.yaml: line 1: nested deeper than 100 levels"


def test_a_fifo_named_hlocal_yaml_is_refused_unread(tmp_path):
    import os

    os.mkfifo(tmp_path / "hlocal.yaml")
    with pytest.raises(ConfigError) as caught:
        load_project(None, cwd=tmp_path)  # found in the directory, then refused: no open() that waits
    assert caught.value.message == f"config file {tmp_path / 'hlocal.yaml'} is a FIFO (named pipe), not a regular file"
    assert caught.value.hint == "point -f at a regular hlocal.yaml file (at most 16 MiB)"


def test_a_device_or_a_huge_hlocal_yaml_is_refused_unread(tmp_path):
    (tmp_path / "dev.yaml").symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match="/dev/zero is a character device, not a regular file"):
        load_project(tmp_path / "dev.yaml")
    with (tmp_path / "big.yaml").open("wb") as out:
        out.truncate(16 * 1024 * 1024 + 1)  # sparse
    with pytest.raises(ConfigError, match="big.yaml is 16 MiB, over the 16 MiB limit"):
        load_project(tmp_path / "big.yaml")


def test_a_missing_wasm_still_loads_because_build_makes_it(tmp_path):
    (tmp_path / "hlocal.yaml").write_text("plugins: [{name: p, wasm: later.wasm, build: {}}]\n")
    assert load_project(tmp_path).plugins[0].wasm == tmp_path.resolve() / "later.wasm"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: (d / "m.wasm").symlink_to("/dev/zero"), "is a character device, not a regular file"),
        (lambda d: __import__("os").mkfifo(d / "m.wasm"), "is a FIFO (named pipe), not a regular file"),
        (lambda d: (d / "m.wasm").symlink_to(d / "m.wasm"), "is a symlink loop"),
        (lambda d: (d / "m.wasm").mkdir(), "is a directory, not a regular file"),
        (lambda d: (d / "m.wasm").open("wb").truncate(256 * 1024 * 1024 + 1), "is 256 MiB, over the 256 MiB limit"),
    ],
    ids=["device", "fifo", "symlink-loop", "directory", "oversize"],
)
def test_a_wasm_that_is_not_a_regular_module_sized_file_is_refused_at_load(tmp_path, make, problem):
    from higress_local.errors import PluginError

    make(tmp_path)
    (tmp_path / "hlocal.yaml").write_text("plugins: [{name: p, wasm: m.wasm}]\n")
    with pytest.raises(PluginError) as caught:  # exit 4, like a missing or non-wasm module
        load_project(tmp_path)
    assert caught.value.message.startswith("hlocal.yaml: plugins[0].wasm: wasm file ")
    assert problem in caught.value.message
    assert caught.value.hint == "point plugins[0].wasm at the built .wasm file (a regular file of at most 256 MiB)"


def test_a_build_dir_behind_a_symlink_loop_is_no_traceback(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "hlocal.yaml").write_text("plugins: [{name: p, wasm: p.wasm, build: {dir: loop}}]\n")
    assert load_project(tmp_path).plugins[0].build.dir == tmp_path / "loop"  # the build then says it cannot run there


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"routes": [{"name": "r", "regex": "/(a)\\1"}]},
         "hlocal.yaml: routes[0].regex: '/(a)\\\\1' is not a regex Envoy accepts (RE2: invalid escape sequence: \\1)"),
        ({"routes": [{"name": "ok", "prefix": "/"}, {"name": "r", "regex": "/(?=x)"}]},
         "hlocal.yaml: routes[1].regex: '/(?=x)' is not a regex Envoy accepts (RE2: invalid perl operator: (?=)"),
        ({"routes": [{"name": "r", "regex": "/[a-z]{1,50}"}]},
         "hlocal.yaml: routes[0].regex: '/[a-z]{1,50}' is too complex for Envoy (RE2 program size 104 > 100)"),
        ({"routes": [{"name": "r", "headers": {"x tenant": "a"}}]},
         "hlocal.yaml: routes[0].headers.x tenant: header name 'x tenant' contains a space"),
        ({"routes": [{"name": "r", "headers": {"x-t": "a\nb"}}]},
         "hlocal.yaml: routes[0].headers.x-t: the value of header 'x-t' contains LF (\\n)"),
        ({"probes": [probe(request={"headers": {"X-A": "1\r\nx-b: 2"}})]},
         "hlocal.yaml: probes[0].request.headers.X-A: the value of header 'X-A' contains CR (\\r)"),
        ({"probes": [probe(request={"headers": {"x-a": ["ok", "caf\u00e9 \u20ac"]}})]},
         "hlocal.yaml: probes[0].request.headers.x-a: the value of header 'x-a' contains '€' (U+20AC), "
         "which HTTP/1.1 cannot carry (latin-1 only)"),
        ({"probes": [probe(request={"headers": {"x:a": "1"}})]},
         "hlocal.yaml: probes[0].request.headers.x:a: header name 'x:a' contains ':' (U+003A)"),
        ({"probes": [probe(request={"path": "/a b"})]},
         "hlocal.yaml: probes[0].request.path: '/a b' contains a space at position 2"),
        ({"probes": [probe(request={"path": "/caf\u00e9"})]},
         "hlocal.yaml: probes[0].request.path: '/café' contains 'é' (U+00E9) at position 4"),
    ],
)
def test_what_envoy_or_the_wire_would_refuse_is_refused_at_load(data, message):
    assert config_error(data).message == message


def test_regexes_envoy_accepts_and_latin1_header_values_still_load():
    project = parse({"routes": [{"name": "r", "regex": "^/v[0-9]+/.*", "headers": {"x-t": "caf\u00e9"}}],
                     "probes": [probe(request={"path": "/a%20b?x=1", "headers": {"x-a": ["1", "caf\u00e9"]}})]})
    assert project.routes[0].regex == "^/v[0-9]+/.*"
    assert project.probes[0].request.headers["x-a"] == ("1", "caf\u00e9")
