"""The shipped bridge.wasm is current, valid, copies xds.* names to the top-level ones and pins a route."""

from __future__ import annotations

import pytest
import wasmtime

from higress_local.wasm.bridge import bridge_wasm_path
from higress_local.wasm.bridge.build import WASM, WAT
from higress_local.wasm.wat import assemble

I32 = wasmtime.ValType.i32()

EXPECTED_EXPORTS = {
    "memory": None,
    "proxy_abi_version_0_2_1": ([], []),
    "proxy_on_memory_allocate": ([I32], [I32]),
    "proxy_on_context_create": ([I32, I32], []),
    "proxy_on_vm_start": ([I32, I32], [I32]),
    "proxy_on_configure": ([I32, I32], [I32]),
    "proxy_on_request_headers": ([I32, I32, I32], [I32]),
}
EXPECTED_IMPORTS = {
    ("env", "proxy_get_property"): ([I32] * 4, [I32]),
    ("env", "proxy_set_property"): ([I32] * 4, [I32]),
    ("env", "proxy_call_foreign_function"): ([I32] * 6, [I32]),
}


def _signature(item_type):
    if isinstance(item_type, wasmtime.MemoryType):
        return None
    return (list(item_type.params), list(item_type.results))


def test_shipped_bridge_is_built_from_the_source():
    assert bridge_wasm_path() == WASM
    assert assemble(WAT) == bridge_wasm_path().read_bytes(), (
        "bridge.wasm is stale: run `python -m higress_local.wasm.bridge.build` and commit the result")


def test_build_is_deterministic():
    assert assemble(WAT) == assemble(WAT)


def test_module_validates_and_has_exactly_the_abi_surface():
    engine = wasmtime.Engine()
    data = bridge_wasm_path().read_bytes()
    wasmtime.Module.validate(engine, data)
    module = wasmtime.Module(engine, data)
    exports = {e.name: _signature(e.type) for e in module.exports}
    imports = {(i.module, i.name): _signature(i.type) for i in module.imports}
    assert exports == EXPECTED_EXPORTS
    assert imports == EXPECTED_IMPORTS


class FakeHost:
    """Just enough of a proxy-wasm host to drive the bridge in wasmtime."""

    def __init__(self, properties: dict[str, bytes]) -> None:
        self.properties = properties  # keyed by NUL-joined path, as on the wire
        self.written: dict[str, bytes] = {}
        self.foreign_calls: list[str] = []
        self.allocations: list[int] = []
        self.store = wasmtime.Store()
        module = wasmtime.Module(self.store.engine, bridge_wasm_path().read_bytes())
        linker = wasmtime.Linker(self.store.engine)
        sig = wasmtime.FuncType([I32] * 4, [I32])
        linker.define_func("env", "proxy_get_property", sig, self._get_property, access_caller=True)
        linker.define_func("env", "proxy_set_property", sig, self._set_property, access_caller=True)
        linker.define_func("env", "proxy_call_foreign_function", wasmtime.FuncType([I32] * 6, [I32]),
                           self._call_foreign, access_caller=True)
        self.instance = linker.instantiate(self.store, module)
        self.exports = self.instance.exports(self.store)

    def _memory(self, caller) -> wasmtime.Memory:
        return caller.get("memory")

    def _read(self, caller, ptr: int, size: int) -> bytes:
        return bytes(self._memory(caller).read(caller, ptr, ptr + size))

    def _get_property(self, caller, path_ptr, path_size, ret_ptr, ret_size):
        value = self.properties.get(self._read(caller, path_ptr, path_size).decode())
        if value is None:
            return 1  # NotFound
        addr = caller.get("proxy_on_memory_allocate")(caller, len(value))
        self.allocations.append(addr)
        memory = self._memory(caller)
        memory.write(caller, value, addr)
        memory.write(caller, addr.to_bytes(4, "little"), ret_ptr)
        memory.write(caller, len(value).to_bytes(4, "little"), ret_size)
        return 0

    def _set_property(self, caller, path_ptr, path_size, value_ptr, value_size):
        path = self._read(caller, path_ptr, path_size).decode()
        self.written[path] = self._read(caller, value_ptr, value_size)
        self.properties[path] = self.written[path]  # as on Envoy: filter state wasm.<path>, read back by name
        return 0

    def _call_foreign(self, caller, name_ptr, name_size, arg_ptr, arg_size, ret_ptr, ret_size):
        self.foreign_calls.append(self._read(caller, name_ptr, name_size).decode())
        return 0

    def call(self, name: str, *args):
        return self.exports[name](self.store, *args)


def test_request_headers_copies_xds_route_and_cluster_names():
    host = FakeHost({"xds\0route_name": b"api", "xds\0cluster_name": b"outbound|8080||api.dns"})
    assert host.call("proxy_on_vm_start", 1, 0) == 1
    assert host.call("proxy_on_configure", 1, 0) == 1
    host.call("proxy_on_context_create", 1, 0)
    host.call("proxy_on_context_create", 2, 1)
    assert host.call("proxy_on_request_headers", 2, 5, 1) == 0  # Continue
    assert host.written == {"route_name": b"api", "cluster_name": b"outbound|8080||api.dns"}


def test_missing_xds_properties_are_left_unset():
    host = FakeHost({"xds\0route_name": b"default"})
    assert host.call("proxy_on_request_headers", 2, 5, 1) == 0
    assert host.written == {"route_name": b"default"}


def test_allocator_resets_per_request_and_grows_memory():
    big = b"r" * 100_000  # more than the single initial page
    host = FakeHost({"xds\0route_name": big, "xds\0cluster_name": b"c"})
    host.call("proxy_on_request_headers", 2, 5, 1)
    first = list(host.allocations)
    assert host.written["route_name"] == big
    assert all(addr % 8 == 0 and addr >= 1024 for addr in first)
    host.allocations.clear()
    host.call("proxy_on_request_headers", 3, 5, 1)
    assert host.allocations == first  # the heap restarted at its base


def test_after_disable_reroute_and_a_route_change_the_route_before_the_plugin_is_pinned():
    # The previous bridge wrote route_name=api; the plugin then called DisableReroute() and
    # rewrote the path, so xds.route_name now names another route.
    host = FakeHost({"route_name": b"api", "cluster_name": b"outbound|80||backend",
                     "clear_route_cache": b"off", "xds\0route_name": b"other",
                     "xds\0cluster_name": b"outbound|80||other"})
    assert host.call("proxy_on_request_headers", 2, 5, 1) == 0
    # Consumed, pinned; route_name / cluster_name keep the pinned route's.
    assert host.written == {"clear_route_cache": b"", "hlocal_pin": b"api"}
    assert host.foreign_calls == ["clear_route_cache"]


def test_a_route_that_vanished_under_the_plugin_is_pinned_back():
    host = FakeHost({"route_name": b"api", "clear_route_cache": b"off"})  # no route now (404 NR)
    host.call("proxy_on_request_headers", 2, 5, 1)
    assert host.written == {"clear_route_cache": b"", "hlocal_pin": b"api"}
    assert host.foreign_calls == ["clear_route_cache"]


def test_disable_reroute_without_a_route_change_pins_nothing_and_is_consumed():
    # So a later plugin that re-routes without DisableReroute() re-routes, as on Higress.
    host = FakeHost({"route_name": b"api", "clear_route_cache": b"off", "xds\0route_name": b"api",
                     "xds\0cluster_name": b"c"})
    host.call("proxy_on_request_headers", 2, 5, 1)
    assert host.written == {"clear_route_cache": b"", "route_name": b"api", "cluster_name": b"c"}
    assert host.foreign_calls == []
    host.written.clear()
    host.properties["xds\0route_name"] = b"next"  # the next plugin re-routed, no DisableReroute
    host.call("proxy_on_request_headers", 3, 5, 1)
    assert host.written == {"route_name": b"next", "cluster_name": b"c"}


@pytest.mark.parametrize("value", [b"on", b"", b"of", b"offf", b"OFF"])
def test_only_exactly_off_counts(value):
    host = FakeHost({"route_name": b"api", "clear_route_cache": value, "xds\0route_name": b"other"})
    host.call("proxy_on_request_headers", 2, 5, 1)
    assert host.written == {"route_name": b"other"}
    assert host.foreign_calls == []


def test_nothing_to_pin_without_a_route_before_the_plugin():
    host = FakeHost({"clear_route_cache": b"off", "xds\0cluster_name": b"c"})
    host.call("proxy_on_request_headers", 2, 5, 1)
    assert host.written == {"clear_route_cache": b"", "cluster_name": b"c"}
    assert host.foreign_calls == []


def test_request_id_is_copied_for_wasm_gos_logger():
    host = FakeHost({"xds\0route_name": b"api", "request\0id": b"6f1c-req"})
    assert host.call("proxy_on_request_headers", 2, 5, 1) == 0
    assert host.written == {"route_name": b"api", "x_request_id": b"6f1c-req"}
