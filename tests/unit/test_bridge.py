"""The shipped bridge.wasm is current, valid, and copies xds.* names to the top-level ones."""

from __future__ import annotations

import wasmtime

from higress_local.bridge import bridge_wasm_path
from higress_local.bridge.build import WASM, WAT, compile_bridge

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
}


def _signature(item_type):
    if isinstance(item_type, wasmtime.MemoryType):
        return None
    return (list(item_type.params), list(item_type.results))


def test_shipped_bridge_is_built_from_the_source():
    assert bridge_wasm_path() == WASM
    assert compile_bridge(WAT) == bridge_wasm_path().read_bytes(), (
        "bridge.wasm is stale: run `python -m higress_local.bridge.build` and commit the result")


def test_build_is_deterministic():
    assert compile_bridge(WAT) == compile_bridge(WAT)


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
        self.allocations: list[int] = []
        self.store = wasmtime.Store()
        module = wasmtime.Module(self.store.engine, bridge_wasm_path().read_bytes())
        linker = wasmtime.Linker(self.store.engine)
        sig = wasmtime.FuncType([I32] * 4, [I32])
        linker.define_func("env", "proxy_get_property", sig, self._get_property, access_caller=True)
        linker.define_func("env", "proxy_set_property", sig, self._set_property, access_caller=True)
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
