"""Build small test modules from WAT text (wasmtime is a dev dependency)."""

from __future__ import annotations

import wasmtime

HEADER = b"\x00asm\x01\x00\x00\x00"


def plugin_wat(
    abi: str | None = "0_2_100",
    imports: tuple[tuple[str, str], ...] = (("env", "proxy_log"),),
    memory: bool = True,
    allocator: str | None = "proxy_on_memory_allocate",
    extra: str = "",
) -> str:
    """Return WAT for a minimal proxy-wasm-shaped module."""
    parts = ["(module"]
    for i, (module, name) in enumerate(imports):
        parts.append(
            f'  (import "{module}" "{name}" (func $imp{i} (param i32 i32 i32) (result i32)))'
        )
    if memory:
        parts.append('  (memory (export "memory") 1)')
    if abi:
        parts.append(f'  (func (export "proxy_abi_version_{abi}"))')
    if allocator:
        parts.append(f'  (func (export "{allocator}") (param i32) (result i32) i32.const 0)')
    parts.append('  (func (export "_initialize"))')
    parts.append(extra)
    parts.append(")")
    return "\n".join(parts)


def plugin(**kwargs) -> bytes:
    """Return the binary of `plugin_wat(**kwargs)`."""
    return wasmtime.wat2wasm(plugin_wat(**kwargs))


def validates(data: bytes) -> bool:
    """Return True if wasmtime accepts the bytes as a valid module."""
    wasmtime.Module(wasmtime.Engine(), data)
    return True
