"""The inject-data emulation (proxy_inject_encoded_data_to_filter_chain on stock Envoy): the adapted
module runs in wasmtime against a scripted host that keeps a response body buffer the way Envoy's
wasm context does (replace at start 0, append at start >= size), so each rule of shim.wat's state
machine is checked by value. Real Envoy runs it in tests/integration/test_security_guard.py."""

from __future__ import annotations

import pytest
import wasmtime

from higress_local.wasm import module as wasm
from higress_local.wasm.adapt import adapter, cache

from wasm_host import ScriptedHost


# A Go-like plugin: its proxy_on_response_body returns the action in $action and, when $inject_in_body
# is set, injects "IN" while running (as wasm-go's MCP framework does from a streaming-body callback).
PLUGIN = """
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_inject_encoded_data_to_filter_chain" (func $inject (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))
  (memory (export "memory") 1)
  (global $action (mut i32) (i32.const 0))
  (global $inject_in_body (mut i32) (i32.const 0))
  (global $body_calls (mut i32) (i32.const 0))
  (data (i32.const 16384) "INJECTED")
  (func (export "proxy_abi_version_0_2_100"))
  (func (export "_initialize"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 20480))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (global.set $body_calls (i32.add (global.get $body_calls) (i32.const 1)))
    (if (global.get $inject_in_body)
      (then
        (drop (call $inject (i32.const 16384) (i32.const 2) (i32.const 0)))
        (drop (call $inject (i32.const 16386) (i32.const 3) (i32.const 0)))))
    (global.get $action))
  (func (export "set_action") (param i32) (global.set $action (local.get 0)))
  (func (export "set_inject_in_body") (param i32) (global.set $inject_in_body (local.get 0)))
  (func (export "body_calls") (result i32) (global.get $body_calls))
  ;; What the SDK does in an HTTP-call callback: make the stream current, then inject.
  (func (export "callback_inject") (param $context i32) (param $size i32) (param $end i32) (result i32)
    (drop (call $effective (local.get $context)))
    (call $inject (i32.const 16384) (local.get $size) (local.get $end)))
  (func (export "unused") (result i32)
    (drop (call $set_buffer (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (drop (call $continue (i32.const 0)))
    (call $log (i32.const 0) (i32.const 0) (i32.const 0)))
)
"""


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


class Envoy(ScriptedHost):
    """The host side: one response body per stream, edited as Envoy's Buffer::copyFrom does."""

    def __init__(self) -> None:
        data = adapter.adapt_module(wasm.add_custom_section(wasmtime.wat2wasm(PLUGIN), "go:buildid", b"t"))
        self.body = bytearray()
        self.continued: list[int] = []
        super().__init__(data, [
            ("env", "proxy_log", 3, lambda c, *a: 0),
            ("env", "proxy_set_buffer_bytes", 5, self.set_buffer),
            ("env", "proxy_continue_stream", 1, lambda c, kind: self.continued.append(kind) or 0),
            ("env", "proxy_set_effective_context", 1, lambda c, ctx: 0),
        ], access_caller=True)

    def set_buffer(self, caller, kind, start, length, ptr, size):
        assert kind == 1, "only the response body is edited"
        data = bytes(self.memory.read(self.store, ptr, ptr + size))
        if start == 0:
            del self.body[:length]
            self.body[:0] = data
        elif start >= len(self.body):
            self.body += data
        else:
            return 2
        return 0

    def chunk(self, context: int, data: bytes, end: bool = False) -> int:
        """Envoy hands the plugin a chunk (the buffered body plus this chunk while buffering)."""
        self.body += data
        return self.call("proxy_on_response_body", context, len(self.body), int(end))


def test_injection_inside_the_body_callback_replaces_then_extends_the_chunk() -> None:
    envoy = Envoy()
    envoy.call("set_inject_in_body", 1)
    envoy.call("set_action", 3)  # the plugin keeps the chunk...
    assert envoy.chunk(7, b"original") == 0  # ...but injected, so what it injected goes on
    assert bytes(envoy.body) == b"INJEC"


def test_a_kept_chunk_is_held_and_a_callback_injection_resumes_the_response() -> None:
    envoy = Envoy()
    envoy.call("set_action", 3)
    assert envoy.chunk(7, b"data: one\n\n") == 1  # StopIterationNoBuffer becomes StopIterationAndBuffer...
    assert envoy.body == b""  # ...of nothing: the plugin dropped the chunk
    assert envoy.call("callback_inject", 7, 8, 0) == 0
    assert bytes(envoy.body) == b"INJECTED" and envoy.continued == [1]


def test_a_callback_injection_into_a_response_not_held_is_refused() -> None:
    envoy = Envoy()
    assert envoy.call("callback_inject", 9, 8, 0) == 2  # BadArgument
    assert envoy.body == b"" and envoy.continued == []


def test_after_the_upstream_ended_injections_wait_for_the_last_one() -> None:
    envoy = Envoy()
    envoy.call("set_action", 3)
    envoy.chunk(7, b"a")
    assert envoy.chunk(7, b"", end=True) == 1
    assert envoy.call("callback_inject", 7, 3, 0) == 0
    assert envoy.continued == [], "more is coming: the response stays held"
    assert envoy.call("callback_inject", 7, 5, 1) == 0
    assert bytes(envoy.body) == b"INJINJEC" and envoy.continued == [1]


def test_after_the_plugin_ended_the_response_later_upstream_data_is_dropped() -> None:
    envoy = Envoy()
    envoy.call("set_action", 3)
    envoy.chunk(7, b"a")
    assert envoy.call("callback_inject", 7, 8, 1) == 0  # end_stream: the plugin's last word
    envoy.body.clear()  # Envoy sent it
    calls = envoy.call("body_calls")
    assert envoy.chunk(7, b"late upstream data") == 0
    assert envoy.body == b"" and envoy.call("body_calls") == calls, "the plugin is not asked again"


def test_streams_beyond_the_table_reuse_the_oldest_entry_without_failing() -> None:
    envoy = Envoy()
    envoy.call("set_action", 3)
    for context in range(100, 114):  # 14 held streams, 12 entries
        assert envoy.chunk(context, b"x") == 1
        envoy.body.clear()
    assert envoy.call("callback_inject", 113, 8, 0) == 0  # the newest is still held
    assert envoy.call("callback_inject", 100, 8, 0) == 2  # the oldest was forgotten


def test_a_module_without_the_response_body_callback_is_refused_by_name() -> None:
    from higress_local.wasm.adapt.plan import plan_for

    source = PLUGIN.replace('(func (export "proxy_on_response_body")', '(func $no_export')
    info = wasm.inspect_bytes(wasm.add_custom_section(wasmtime.wat2wasm(source), "go:buildid", b"t"), "p")
    problems = plan_for(info).problems
    assert problems and "proxy_on_response_body" in problems[0]
