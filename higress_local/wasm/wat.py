"""Assembling hlocal's own WebAssembly text (the adapter's shim, the property bridge) into the binary
committed beside it: a dev-only step, run by `wasm/adapt/build.py` and `wasm/bridge/build.py`."""

from __future__ import annotations

from pathlib import Path


def assemble(wat_path: Path) -> bytes:
    """Assemble a text module; the output depends only on the text."""
    import wasmtime  # dev-only dependency: needed to build, not to run

    return bytes(wasmtime.wat2wasm(wat_path.read_text(encoding="utf-8")))


def rebuild(wat_path: Path) -> int:
    """Write the assembled `wat_path` beside it (x.wat -> x.wasm); the exit code of a build script."""
    wasm_path = wat_path.with_suffix(".wasm")
    data = assemble(wat_path)
    wasm_path.write_bytes(data)
    print(f"wrote {wasm_path} ({len(data)} bytes)")
    return 0
