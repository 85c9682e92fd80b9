"""Rebuild shim.wasm from shim.wat: ``python -m higress_local.wasm.adapt.build``."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WAT = HERE / "shim.wat"
WASM = HERE / "shim.wasm"


def compile_shim(wat_path: Path = WAT) -> bytes:
    """Assemble the shim's text module; the output depends only on the text."""
    import wasmtime  # dev-only dependency: needed to build, not to run

    return bytes(wasmtime.wat2wasm(wat_path.read_text(encoding="utf-8")))


def main() -> int:
    data = compile_shim()
    WASM.write_bytes(data)
    print(f"wrote {WASM} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
