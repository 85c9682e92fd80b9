"""Stock Envoy's side of a module run in wasmtime, scripted by a unit test: the host functions the test
defines, and access to the module's memory and exports. The adapted copies' emulations are tested
against it (tests/unit/test_adapt*.py, test_buffer_limits.py, test_upstream_hosts.py)."""

from __future__ import annotations

import struct
from typing import Any, Callable, Iterable

import wasmtime

I32 = wasmtime.ValType.i32()
HostFunction = tuple[str, str, int, Callable[..., int]]  # module, name, i32 parameter count, function


class ScriptedHost:
    """Instantiates `data` with `functions` (each returns one i32); `access_caller` passes wasmtime's
    caller as each function's first argument."""

    def __init__(self, data: bytes, functions: Iterable[HostFunction], *, access_caller: bool = False) -> None:
        self.engine = wasmtime.Engine()
        self.store = wasmtime.Store(self.engine)
        linker = wasmtime.Linker(self.engine)
        for module, name, params, fn in functions:
            linker.define_func(module, name, wasmtime.FuncType([I32] * params, [I32]), fn,
                               access_caller=access_caller)
        self.instance = linker.instantiate(self.store, wasmtime.Module(self.engine, data))
        self.memory = self.instance.exports(self.store)["memory"]

    def read(self, at: int, size: int) -> bytes:
        return bytes(self.memory.read(self.store, at, at + size))

    def write(self, data: bytes, at: int) -> None:
        self.memory.write(self.store, data, at)

    def u32(self, at: int) -> int:
        return struct.unpack("<I", self.read(at, 4))[0]

    def call(self, name: str, *args: int) -> Any:
        return self.instance.exports(self.store)[name](self.store, *args)
