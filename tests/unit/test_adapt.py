"""The module adapter: emulated Higress-only functions run (in wasmtime, against a scripted host),
the rewritten module validates, and the cache makes a second adaptation free."""

from __future__ import annotations

import struct

import pytest
import wasmtime

from higress_local.wasm import module as wasm
from higress_local.wasm.compat import check_compatibility
from higress_local.wasm.adapt import adapter, cache
from higress_local.wasm.adapt.binary import AdaptError, parse_module
from higress_local.wasm.adapt.build import WASM, WAT
from higress_local.wasm.wat import assemble
from higress_local.errors import PluginError

from wasm_host import ScriptedHost

# A module shaped like a Go wasip1 build of a wasm-go plugin: the Higress imports, the SDK's
# callbacks, data above Go's reserved range, and a go:buildid section.
GO_LIKE = """
(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_redis_init" (func $redis_init (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_redis_call" (func $redis_call (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_call_foreign_function" (func $foreign (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 20480))
  (global $redis_status (mut i32) (i32.const -1))
  (global $redis_size (mut i32) (i32.const -1))
  (global $http_token (mut i32) (i32.const -1))
  (data (i32.const 16384) "outbound|6379||redis.internal?db=2")
  (data (i32.const 16448) "alice")
  (data (i32.const 16464) "s3cret")
  (data (i32.const 16480) "*1\\0d\\0a$4\\0d\\0aPING\\0d\\0a")
  (data (i32.const 16512) "get_log_level")
  (func (export "proxy_abi_version_0_2_100"))
  (func (export "_initialize"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $n)))
    (local.get $at))
  (func (export "do_init") (result i32)
    (call $redis_init (i32.const 16384) (i32.const 34) (i32.const 16448) (i32.const 5)
      (i32.const 16464) (i32.const 6) (i32.const 700)))
  (func (export "do_call") (result i32)
    (call $redis_call (i32.const 16384) (i32.const 29) (i32.const 16480) (i32.const 14) (i32.const 16600)))
  (func (export "token") (result i32) (i32.load (i32.const 16600)))
  (func (export "read_redis_buffer") (result i32)
    (call $get_buffer (i32.const 9) (i32.const 0) (i32.const 100) (i32.const 16608) (i32.const 16612)))
  (func (export "read_body_buffer") (result i32)
    (call $get_buffer (i32.const 0) (i32.const 0) (i32.const 100) (i32.const 16608) (i32.const 16612)))
  (func (export "log_level") (result i32)
    (drop (call $foreign (i32.const 16512) (i32.const 13) (i32.const 0) (i32.const 0)
      (i32.const 16616) (i32.const 16620)))
    (i32.load (i32.load (i32.const 16616))))
  (func (export "other_foreign") (result i32)
    (call $foreign (i32.const 16512) (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 16616) (i32.const 16620)))
  (func (export "unused") (result i32) (call $log (i32.const 0) (i32.const 0) (i32.const 0))
    (drop (call $get_header (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32) (global.set $http_token (local.get 1)))
  (func (export "proxy_on_redis_call_response") (param i32 i32 i32 i32)
    (global.set $redis_status (local.get 2)) (global.set $redis_size (local.get 3)))
  (func (export "redis_status") (result i32) (global.get $redis_status))
  (func (export "redis_size") (result i32) (global.get $redis_size))
  (func (export "http_token") (result i32) (global.get $http_token))
)
"""


def go_like(wat: str = GO_LIKE) -> bytes:
    return wasm.add_custom_section(wasmtime.wat2wasm(wat), "go:buildid", b"test")


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


class Host(ScriptedHost):
    """Stock Envoy's side, scripted: records what the adapted module asks for."""

    def __init__(self, data: bytes) -> None:
        self.calls: list[tuple] = []
        self.next_token = 41
        self.status_header = b"200"
        self.http_result = 0
        super().__init__(data, [
            ("env", "proxy_log", 3, lambda c, *a: 0),
            ("env", "proxy_http_call", 10, self.http_call),
            ("env", "proxy_get_header_map_value", 5, self.get_header),
            ("env", "proxy_get_buffer_bytes", 5, self.get_buffer),
            ("env", "proxy_call_foreign_function", 6, lambda c, *a: self.calls.append(("foreign",) + a) or 1),
        ], access_caller=True)

    def http_call(self, caller, uri, uri_len, hdr, hdr_len, body, body_len, tr, tr_len, timeout, token_ptr):
        if self.http_result:
            return self.http_result
        pairs = self.read(hdr, hdr_len)
        self.calls.append(("http_call", self.read(uri, uri_len), pairs, self.read(body, body_len), timeout))
        self.next_token += 1
        self.memory.write(self.store, struct.pack("<I", self.next_token), token_ptr)
        return 0

    def get_header(self, caller, map_type, key, key_len, value_pp, size_pp):
        self.calls.append(("get_header", map_type, self.read(key, key_len)))
        at = self.call("proxy_on_memory_allocate", len(self.status_header))
        self.memory.write(self.store, self.status_header, at)
        self.memory.write(self.store, struct.pack("<II", at, len(self.status_header)), value_pp)
        return 0

    def get_buffer(self, caller, buffer_type, start, length, pp, sp):
        self.calls.append(("get_buffer", buffer_type))
        return 0


def header_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    count = struct.unpack_from("<I", raw)[0]
    sizes = struct.unpack_from("<" + "I" * (2 * count), raw, 4)
    at, pairs = 4 + 8 * count, []
    for i in range(count):
        key = raw[at:at + sizes[2 * i]]
        at += sizes[2 * i] + 1
        value = raw[at:at + sizes[2 * i + 1]]
        at += sizes[2 * i + 1] + 1
        pairs.append((key, value))
    return pairs


def adapted(data: bytes | None = None, level: str = "debug") -> Host:
    return Host(adapter.adapt_module(data or go_like(), wasm_log_level=level, name="test"))


def test_shipped_shim_is_built_from_the_source():
    assert assemble(WAT) == WASM.read_bytes() == adapter.shim_bytes(), (
        "shim.wasm is stale: run `python -m higress_local.wasm.adapt.build` and commit the result")


def test_the_copy_links_with_stock_host_functions_only_and_keeps_every_index():
    original = go_like()
    out = adapter.adapt_module(original, wasm_log_level="info", name="test")
    before, after = wasm.inspect_bytes(original), wasm.inspect_bytes(out)
    assert not {"proxy_redis_init", "proxy_redis_call"} & set(after.host_functions)
    assert "proxy_http_call" in after.host_functions
    assert len(after.imports) == len(before.imports)
    assert after.abi_version == "0.2.1"
    kept = {e.name.replace("0_2_100", "0_2_1"): e.index for e in before.exports}
    moved = {e.name for e in after.exports if kept[e.name] != e.index}
    assert moved == {"proxy_on_http_call_response"}
    assert check_compatibility(after, "envoy").runnable


def test_redis_init_hands_the_relay_credentials_and_options_on_the_cluster():
    host = adapted()
    assert host.call("do_init") == 0
    [(kind, cluster, pairs, body, timeout)] = host.calls
    assert (kind, cluster, timeout) == ("http_call", b"outbound|6379||redis.internal", 700)
    assert (b":path", b"/hlocal-redis/init") in header_pairs(pairs)
    assert body == struct.pack("<III", 5, 6, 700) + b"alice" + b"s3cret" + b"outbound|6379||redis.internal?db=2"
    # The relay's reply to the init call is not the plugin's business.
    host.call("proxy_on_http_call_response", 1, host.next_token, 3, 5, 0)
    assert host.call("http_token") == -1 and host.call("redis_status") == -1


def test_an_unknown_cluster_fails_init_with_the_hosts_status():
    host = adapted()
    host.http_result = 2  # stock Envoy: BadArgument for a cluster it does not know (as Higress)
    assert host.call("do_init") == 2


def test_a_command_is_an_http_call_and_its_reply_reaches_the_redis_callback():
    host = adapted()
    assert host.call("do_init") == 0
    assert host.call("do_call") == 0
    _, cluster, pairs, body, timeout = host.calls[-1]
    assert cluster == b"outbound|6379||redis.internal" and body == b"*1\r\n$4\r\nPING\r\n"
    assert timeout == 700  # Init's timeout
    assert dict(header_pairs(pairs))[b":path"] == b"/hlocal-redis/call"
    token = host.call("token")
    assert token == host.next_token
    host.call("proxy_on_http_call_response", 1, token, 3, 7, 0)
    assert (host.call("redis_status"), host.call("redis_size")) == (0, 7)
    assert ("get_header", 6, b":status") in host.calls
    assert host.call("http_token") == -1  # not the SDK's HTTP callback


def test_a_relay_failure_is_a_failed_redis_call_and_other_http_calls_pass_through():
    host = adapted()
    host.call("do_call")
    host.status_header = b"502"
    host.call("proxy_on_http_call_response", 1, host.call("token"), 3, 0, 0)
    assert (host.call("redis_status"), host.call("redis_size")) == (1, 0)
    host.call("do_call")
    host.call("proxy_on_http_call_response", 1, host.call("token"), 0, 0, 0)  # no answer at all
    assert host.call("redis_status") == 1
    host.call("proxy_on_http_call_response", 1, 999, 2, 10, 0)  # a call the plugin made itself
    assert host.call("http_token") == 999


def test_redis_buffer_reads_the_http_call_body_and_other_buffers_are_untouched():
    host = adapted()
    host.call("read_redis_buffer")
    host.call("read_body_buffer")
    assert [c for c in host.calls if c[0] == "get_buffer"] == [("get_buffer", 4), ("get_buffer", 0)]


@pytest.mark.parametrize(("level", "number"), [("trace", 0), ("debug", 1), ("info", 2), ("error", 4)])
def test_get_log_level_answers_the_stack_level(level, number):
    host = adapted(level=level)
    assert host.call("log_level") == number
    assert not [c for c in host.calls if c[0] == "foreign"]
    assert host.call("other_foreign") == 1  # other names still reach Envoy
    assert host.calls[-1][0] == "foreign"


def test_a_module_whose_data_uses_the_reserved_range_is_refused():
    data = go_like(GO_LIKE.replace("(i32.const 16384) \"outbound", "(i32.const 8192) \"outbound"))
    with pytest.raises(PluginError, match=r"overlaps the range \[4096, 12288\)"):
        adapter.adapt_module(data, name="test")


def test_the_cache_makes_the_second_adaptation_free(monkeypatch):
    data = go_like()
    first = adapter.adapt_module(data, wasm_log_level="info", name="test")
    assert len(list(cache.cache_dir().glob("*.wasm"))) == 1

    def fail(*_args):
        raise AssertionError("adapted again despite the cache")

    monkeypatch.setattr(adapter, "merge", fail)
    assert adapter.adapt_module(data, wasm_log_level="info", name="test") == first
    with pytest.raises(AssertionError, match="adapted again"):  # other parameters, other copy
        adapter.adapt_module(data, wasm_log_level="trace", name="test")


def test_a_change_to_the_adapter_code_changes_the_cache_key(monkeypatch):
    key = adapter.cache_key("00" * 32, "info")
    monkeypatch.setattr(adapter, "code_digest", lambda: b"other merge code")
    assert adapter.cache_key("00" * 32, "info") != key


def test_unsupported_instructions_are_refused_not_skipped():
    module = parse_module(go_like())
    start, end = module.bodies[0]
    from higress_local.wasm.adapt.instructions import references

    patched = module.data[:start + 1] + b"\xfd" + module.data[start + 2:]  # a SIMD prefix
    with pytest.raises(AdaptError, match="unsupported instruction 0xfd"):
        list(references(patched, start, end))


def test_a_module_that_already_imports_http_call_keeps_using_it():
    wat = GO_LIKE.replace(
        '(import "env" "proxy_log"',
        '(import "env" "proxy_http_call" (func $http (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))\n'
        '  (import "env" "proxy_log"')
    wat = wat.replace('(func (export "unused") (result i32)',
                      '(func (export "own_call") (result i32) (call $http (i32.const 0) (i32.const 0) (i32.const 0) '
                      '(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))\n'
                      '  (func (export "unused") (result i32)')
    out = adapter.adapt_module(go_like(wat), name="test")
    info = wasm.inspect_bytes(out)
    assert info.host_functions.count("proxy_http_call") == 1
    assert info.host_functions.count("proxy_log") == 3  # both Higress slots now name a harmless stock function
    host = Host(out)
    assert host.call("do_call") == 0 and host.calls[-1][0] == "http_call"
    host.call("own_call")
    assert host.calls[-1][1] == b""  # the plugin's own call still goes straight to Envoy
