"""Rebuild bridge.wasm from bridge.wat: ``python -m higress_local.wasm.bridge.build``."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WAT = HERE / "bridge.wat"
WASM = HERE / "bridge.wasm"


def compile_bridge(wat_path: Path = WAT) -> bytes:
    """Assemble the bridge's text module; the output depends only on the text."""
    import wasmtime  # dev-only dependency: needed to build, not to run

    return bytes(wasmtime.wat2wasm(wat_path.read_text(encoding="utf-8")))


def main() -> int:
    data = compile_bridge()
    WASM.write_bytes(data)
    print(f"wrote {WASM} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
