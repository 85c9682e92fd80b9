"""Request buffer limits as on Higress: gateway.downstream.connection_buffer_limits, the rendered
listener and cluster limits, and the adapted module's 413 (run in wasmtime against a scripted host)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import wasmtime

from higress_local.wasm import module as wasm
from higress_local.wasm.adapt import adapter, cache
from higress_local.wasm.adapt.binary import parse_module
from higress_local.wasm.adapt.plan import plan_for
from higress_local.config.project import parse_project
from higress_local.errors import ConfigError
from higress_local.render.envoy import Layout, render_bootstrap, render_clusters

from wasm_host import ScriptedHost


# A Go-like wasm-go module: fd_write imported twice (as Go's wasip1 runtime does), no
# proxy_send_local_response; its body callback buffers (StopIterationAndBuffer) unless told not to.
GO_BUFFERING = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w1 (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $w2 (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 20480))
  (global $action (mut i32) (i32.const 1))
  (data (i32.const 16384) "go")
  (func (export "proxy_abi_version_0_2_100"))
  (func (export "_initialize"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $n)))
    (local.get $at))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32) (global.get $action))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32) (global.get $action))
  (func (export "set_action") (param i32) (global.set $action (local.get 0)))
  (func (export "write_first") (result i32) (call $w1 (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0)))
  (func (export "write_second") (result i32) (call $w2 (i32.const 2) (i32.const 0) (i32.const 0) (i32.const 0)))
)
"""


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


def go_module(wat: str = GO_BUFFERING) -> bytes:
    return wasm.add_custom_section(wasmtime.wat2wasm(wat), "go:buildid", b"test")


class Host(ScriptedHost):
    """Stock Envoy's side, scripted: the stream's set_decoder_buffer_limit and what the copy sends."""

    def __init__(self, data: bytes) -> None:
        self.properties: dict[bytes, bytes] = {}
        self.replies: list[tuple[int, bytes, bytes]] = []
        self.writes: list[int] = []
        super().__init__(data, [
            ("wasi_snapshot_preview1", "fd_write", 4, lambda fd, *_: self.writes.append(fd) or 0),
            ("env", "proxy_get_property", 4, self.get_property),
            ("env", "proxy_send_local_response", 8, self.reply),
        ])

    def get_property(self, path, path_len, value_pp, size_p) -> int:
        value = self.properties.get(self.read(path, path_len))
        if value is None:
            return 1  # NotFound
        at = self.call("proxy_on_memory_allocate", len(value))
        self.memory.write(self.store, value, at)
        self.memory.write(self.store, struct.pack("<II", at, len(value)), value_pp)
        return 0

    def reply(self, status, details, details_len, body, body_len, headers, headers_len, grpc) -> int:
        self.replies.append((status, self.read(body, body_len), self.read(details, details_len)))
        return 0


def adapted(limit: int = 32768) -> Host:
    return Host(adapter.adapt_module(go_module(), name="test", request_buffer_limit=limit))


# -- the copy's 413 -----------------------------------------------------------------------------------


def test_a_buffered_body_over_the_limit_gets_envoys_413():
    host = adapted()
    assert host.call("proxy_on_request_body", 7, 32768, 0) == 1  # exactly the limit: still buffering
    assert host.replies == []
    assert host.call("proxy_on_request_body", 7, 32769, 0) == 3  # StopIterationNoBuffer: the reply ends it
    assert host.replies == [(413, b"Payload Too Large", b"request_payload_too_large")]


def test_a_body_the_plugin_does_not_buffer_is_never_limited():
    host = adapted()
    host.call("set_action", 0)  # Continue: nothing stays in Envoy's buffer
    assert host.call("proxy_on_request_body", 7, 10_000_000, 1) == 0
    assert host.replies == []


@pytest.mark.parametrize(("raised", "size", "too_large"), [
    (b"104857600", 5_000_000, False),  # ai-proxy's 100 MiB
    (b"65536", 65536, False),
    (b"65536", 65537, True),  # raised, and enforced at the raised limit
    (b"16", 17, True),  # lowered below the default: the stream's limit is the last one set
    (b"0", 40000, False),  # 0: no limit, as Envoy's watermark buffers read it
    (b"abc", 40000, True),  # not a number: ignored, as Higress's Envoy ignores it
    (b"99999999999", 40000, False),  # past u32: no limit below 4 GiB
])
def test_the_limit_the_stream_set_replaces_the_default(raised, size, too_large):
    host = adapted()
    host.properties[b"set_decoder_buffer_limit"] = raised
    assert host.call("proxy_on_request_body", 7, size, 0) == (3 if too_large else 1)
    assert bool(host.replies) is too_large


def test_a_buffered_response_over_the_limit_gets_envoys_500_unless_raised():
    host = adapted()
    assert host.call("proxy_on_response_body", 7, 32768, 0) == 1
    assert host.call("proxy_on_response_body", 7, 32769, 0) == 3
    assert host.replies == [(500, b"Internal Server Error", b"response_payload_too_large")]
    host.properties[b"set_decoder_buffer_limit"] = b"65536"  # one limit per stream, as Envoy keeps it
    assert host.call("proxy_on_response_body", 7, 65536, 0) == 1
    host.properties[b"set_encoder_buffer_limit"] = b"104857600"  # SetResponseBodyBufferLimit, set later
    assert host.call("proxy_on_response_body", 7, 5_000_000, 0) == 1
    assert len(host.replies) == 1


def test_the_default_is_gateway_downstream_connection_buffer_limits():
    host = adapted(limit=131072)
    assert host.call("proxy_on_request_body", 7, 131072, 0) == 1
    assert host.call("proxy_on_request_body", 7, 131073, 0) == 3


def test_a_duplicate_import_slot_carries_the_missing_host_function_and_its_calls_go_to_the_first():
    original = go_module()
    out = adapter.adapt_module(original, name="test")
    before, after = parse_module(original, "in"), parse_module(out, "out")
    assert len(after.func_imports) == len(before.func_imports)  # no index moved
    assert after.func_imports[2].name == "proxy_send_local_response"
    host = Host(out)
    assert (host.call("write_first"), host.call("write_second")) == (0, 0)
    assert host.writes == [1, 2]  # both copies' callers still reach fd_write


# -- which modules get it -------------------------------------------------------------------------------


def test_plan_enforces_in_go_modules_that_buffer_request_bodies():
    plan = plan_for(wasm.inspect_bytes(go_module()), request_buffer_limit=65536)
    assert "decoder_buffer_limit" in plan.emulations
    assert plan.merge.exports == ["proxy_on_request_body", "proxy_on_response_body"]
    assert plan.merge.export_from == {"proxy_on_response_body": "limit:proxy_on_response_body"}
    assert (4608, (65536).to_bytes(4, "little")) in plan.merge.data
    assert any("gateway.downstream.connection_buffer_limits" in a for a in plan.adaptations)


def test_responses_stay_with_the_inject_data_emulation_when_it_takes_their_callback():
    inject = GO_BUFFERING.replace('(memory (export "memory") 1)', '(import "env" "proxy_inject_encoded_data_to_filter_chain" '
                                  '(func $inject (param i32 i32 i32) (result i32)))\n  (memory (export "memory") 1)')
    plan = plan_for(wasm.inspect_bytes(go_module(inject)))
    assert plan.merge.exports.count("proxy_on_response_body") == 1 and plan.merge.export_from == {}
    assert any(a.startswith("response buffer limit NOT enforced") for a in plan.adaptations)


def test_plan_leaves_other_modules_alone_and_says_when_it_cannot_enforce():
    not_go = plan_for(wasm.inspect_bytes(wasmtime.wat2wasm(GO_BUFFERING)))
    assert not_go.emulations == [] and not not_go.rewrites
    no_callback = GO_BUFFERING.replace('(export "proxy_on_request_body")', "")
    assert plan_for(wasm.inspect_bytes(go_module(no_callback))).emulations == []
    # No proxy_get_property, no spare slot: the module still runs, the limit is not enforced (said so).
    bare = GO_BUFFERING.replace('(import "env" "proxy_get_property"', '(import "env" "proxy_log"')
    bare = bare.replace('(import "wasi_snapshot_preview1" "fd_write" (func $w2', '(import "env" "proxy_done" (func $w2')
    plan = plan_for(wasm.inspect_bytes(go_module(bare)))
    assert plan.emulations == [] and not plan.problems
    assert any("request buffer limit NOT enforced" in a for a in plan.adaptations)


# -- configuration and rendering --------------------------------------------------------------------------


def project(gateway: dict | None = None):
    return parse_project({"name": "buf", "gateway": gateway or {}}, Path("/p/hlocal.yaml"))


def layout(flavor: str) -> Layout:
    return Layout(flavor=flavor, listen_address="127.0.0.1", listen_port=10000, admin_address="127.0.0.1",
                  admin_port=9901, backend_address="127.0.0.1", backend_port=19000, ecds_dir="/e", xds_dir="/x",
                  bridge_module="/b.wasm")


def test_connection_buffer_limits_defaults_to_higress_and_takes_higress_key():
    assert project().gateway.connection_buffer_limits == 32768
    assert project({"downstream": {"connection_buffer_limits": 65536}}).gateway.connection_buffer_limits == 65536


@pytest.mark.parametrize(("value", "message"), [
    ("32k", "gateway.downstream.connection_buffer_limits: expected an integer"),
    (0, "gateway.downstream.connection_buffer_limits: 0 is out of range 1..4294967295"),
    (2**32, "is out of range"),
])
def test_bad_connection_buffer_limits_name_the_key(value, message):
    with pytest.raises(ConfigError, match=message):
        project({"downstream": {"connection_buffer_limits": value}})


def test_unknown_downstream_key_is_refused():
    with pytest.raises(ConfigError, match="gateway.downstream.connectionBufferLimits"):
        project({"downstream": {"connectionBufferLimits": 1}})


@pytest.mark.parametrize(("flavor", "configured", "listener"), [
    ("higress", 32768, 32768), ("higress", 65536, 65536),  # Higress's Envoy enforces it itself
    ("envoy", 32768, 104857600),  # stock: high; the adapted modules enforce 32768
    ("envoy", 209715200, 209715200),
])
def test_listener_limit(flavor, configured, listener):
    doc = render_bootstrap(project({"downstream": {"connection_buffer_limits": configured}}), layout(flavor))
    assert [li["per_connection_buffer_limit_bytes"] for li in doc["static_resources"]["listeners"]] == [listener]


def test_every_cluster_has_higress_upstream_buffer_limit():
    clusters = render_clusters(project(), layout("envoy"))
    assert clusters and all(c["per_connection_buffer_limit_bytes"] == 10485760 for c in clusters)
