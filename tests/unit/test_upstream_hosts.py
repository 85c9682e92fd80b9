"""The upstream-hosts emulation: hlocal.yaml `urls`, the table written into the module, what the
adapted module answers (run in wasmtime against a scripted stock host), and the cluster it pins in."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import wasmtime

from higress_local.wasm import module as wasm
from higress_local.wasm.adapt import adapter, cache
from higress_local.wasm.adapt.plan import plan_for
from higress_local.wasm.adapt.upstream import TABLE_ADDRESS, upstream_table
from higress_local.config.project import parse_project
from higress_local.errors import ConfigError
from higress_local.config.models import Endpoint, Service
from higress_local.render.endpoints import OVERRIDE_HOST_HEADER, override_header_guards, render_endpoints_cluster

from wasm_host import ScriptedHost

from .test_adapt import header_pairs

LLM = Service(name="llm", kind="static", host="llm", port=80,
              urls=(Endpoint("10.0.0.1", 8001), Endpoint("10.0.0.2", 8002, "vllm:num_requests_waiting 3\n")))
OTHER = Service(name="b", kind="fqdn", host="b.example", port=80, urls=(Endpoint("10.0.0.3", 80),))

LB_LIKE = """
(module
  (import "env" "proxy_get_upstream_hosts" (func $hosts (param i32 i32) (result i32)))
  (import "env" "proxy_set_upstream_override_host" (func $pin (param i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 20480))
  (data (i32.const 16384) "10.0.0.2:8002")
  (func (export "proxy_abi_version_0_2_100"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $n)))
    (local.get $at))
  (func (export "list") (result i32) (call $hosts (i32.const 16600) (i32.const 16604)))
  (func (export "pin") (result i32) (call $pin (i32.const 16384) (i32.const 13)))
  (func (export "unused") (result i32)
    (drop (call $prop (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $replace (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
)
"""


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


class Host(ScriptedHost):
    """Stock Envoy, scripted: the cluster_name property and the request headers."""

    def __init__(self, data: bytes, cluster: bytes) -> None:
        self.cluster, self.headers, self.paths = cluster, {}, []
        super().__init__(data, [
            # A retired Higress-only slot stays linkable through proxy_log (adapt/merge.py).
            ("env", "proxy_log", 3, lambda *a: 0),
            ("env", "proxy_get_property", 4, self.get_property),
            ("env", "proxy_replace_header_map_value", 5, self.replace),
        ])

    def get_property(self, path, path_len, value_pp, size_pp):
        self.paths.append(self.read(path, path_len))
        if self.cluster is None:
            return 1
        at = self.call("proxy_on_memory_allocate", len(self.cluster))  # as Envoy hands values over
        self.memory.write(self.store, self.cluster, at)
        self.memory.write(self.store, struct.pack("<II", at, len(self.cluster)), value_pp)
        return 0

    def replace(self, map_type, key, key_len, value, value_len):
        self.headers[(map_type, self.read(key, key_len))] = self.read(value, value_len)
        return 0


def adapted(cluster: bytes | None, services=(LLM, OTHER)) -> Host:
    data = wasm.add_custom_section(wasmtime.wat2wasm(LB_LIKE), "go:buildid", b"test")
    served = adapter.adapt_module(data, name="lb", upstream_hosts=upstream_table(services))
    return Host(served, cluster)


def test_the_module_lists_the_hosts_of_the_requests_cluster():
    host = adapted(b"outbound|80||llm.static")
    assert host.call("list") == 0
    ptr, size = struct.unpack("<II", host.read(16600, 8))
    assert TABLE_ADDRESS <= ptr < 12288  # read in place, as the SDK reads get_log_level's answer
    assert header_pairs(host.read(ptr, size)) == [
        (b"10.0.0.1:8001", b'{"health_status":"Healthy","metrics":""}'),
        (b"10.0.0.2:8002", b'{"health_status":"Healthy","metrics":"vllm:num_requests_waiting 3\\n"}')]
    assert host.paths == [b"cluster_name"]
    other = adapted(b"outbound|80||b.example")
    assert other.call("list") == 0
    ptr, size = struct.unpack("<II", other.read(16600, 8))
    assert header_pairs(other.read(ptr, size)) == [(b"10.0.0.3:80", b'{"health_status":"Healthy","metrics":""}')]


@pytest.mark.parametrize("cluster", [b"outbound|80||backend", b"outbound|80||llm.stati", None])
def test_a_cluster_without_urls_or_no_cluster_name_is_not_found(cluster):
    assert adapted(cluster).call("list") == 1  # NotFound: the plugin keeps Envoy's balancing


def test_no_service_with_urls_lists_nothing():
    assert adapted(b"outbound|80||llm.static", services=()).call("list") == 1


def test_the_pinned_host_goes_into_the_override_header():
    host = adapted(b"outbound|80||llm.static")
    assert host.call("pin") == 0
    assert host.headers == {(0, OVERRIDE_HOST_HEADER.encode()): b"10.0.0.2:8002"}


def test_the_cluster_takes_the_header_and_balances_round_robin_without_it():
    cluster = render_endpoints_cluster(LLM, LLM.urls)
    assert cluster["name"] == "outbound|80||llm.static" and cluster["type"] == "STATIC"
    hosts = [h["endpoint"]["address"]["socket_address"] for h in cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]]
    assert hosts == [{"address": "10.0.0.1", "port_value": 8001}, {"address": "10.0.0.2", "port_value": 8002}]
    [policy] = cluster["load_balancing_policy"]["policies"]
    config = policy["typed_extension_config"]
    assert config["name"] == "envoy.load_balancing_policies.override_host"
    assert config["typed_config"]["override_host_sources"] == [{"header": OVERRIDE_HOST_HEADER}]
    [fallback] = config["typed_config"]["fallback_policy"]["policies"]
    assert fallback["typed_extension_config"]["name"] == "envoy.load_balancing_policies.round_robin"
    # The endpoint never sees the header: an upstream filter drops it once the host is chosen.
    [options] = cluster["typed_extension_protocol_options"].values()
    remove, codec = options["http_filters"]
    assert remove["typed_config"]["mutations"] == {"request_mutations": [{"remove": OVERRIDE_HOST_HEADER}]}
    assert codec["name"] == "envoy.filters.http.upstream_codec"


def test_on_higress_the_cluster_stays_plain_and_the_gateway_pins_the_host_itself():
    cluster = render_endpoints_cluster(LLM, LLM.urls, stock_envoy=False)
    assert "load_balancing_policy" not in cluster and "typed_extension_protocol_options" not in cluster
    assert len(cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]) == 2


def test_a_clients_own_override_header_is_removed_before_any_filter_only_with_urls():
    assert override_header_guards(()) == {} and override_header_guards((Service("a", "fqdn", "a", 80),)) == {}
    [early] = override_header_guards((LLM,))["early_header_mutation_extensions"]
    assert early["typed_config"]["mutations"] == [{"remove": OVERRIDE_HOST_HEADER}]


def _project(urls) -> object:
    return parse_project({"services": [{"name": "llm", "kind": "static", "host": "llm", "port": 80, "urls": urls}]},
                         Path("/tmp/p/hlocal.yaml"))


def test_urls_take_ip_endpoints_with_optional_metrics():
    [service] = _project(["http://127.0.0.1:8001", {"url": "http://[::1]:8002/", "metrics": "m 1\n"}]).services
    assert service.urls == (Endpoint("127.0.0.1", 8001), Endpoint("::1", 8002, "m 1\n"))
    assert [e.host for e in service.urls] == ["127.0.0.1:8001", "[::1]:8002"]


@pytest.mark.parametrize("urls, problem", [
    (["http://localhost:8001"], "is not like http://IP:PORT"),
    (["http://127.0.0.1:8001/v1"], "is not like http://IP:PORT"),
    ([], "is empty"),
    ([{"url": "http://127.0.0.1:1", "weight": 2}], "weight"),
])
def test_bad_urls_are_refused_with_the_key_path(urls, problem):
    with pytest.raises(ConfigError) as caught:
        _project(urls)
    assert "services[0].urls" in caught.value.message and problem in caught.value.message


def test_a_table_too_large_for_the_scratch_range_is_a_problem_check_names():
    info = wasm.inspect_bytes(wasm.add_custom_section(wasmtime.wat2wasm(LB_LIKE), "go:buildid", b"x"))
    big = Service(name="llm", kind="static", host="llm", port=80,
                  urls=tuple(Endpoint("10.0.0.1", 8000 + i, "x" * 300) for i in range(8)))
    assert plan_for(info, upstream_hosts=upstream_table([LLM])).emulations == ["upstream_hosts"]
    [problem] = plan_for(info, upstream_hosts=upstream_table([big])).problems
    assert "list fewer endpoints or shorter metrics" in problem
