"""Rebuild bridge.wasm from bridge.wat: ``python -m higress_local.wasm.bridge.build``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..wat import assemble, rebuild

HERE = Path(__file__).resolve().parent
WAT = HERE / "bridge.wat"
WASM = HERE / "bridge.wasm"


def compile_bridge(wat_path: Path = WAT) -> bytes:
    """Assemble the bridge's text module."""
    return assemble(wat_path)


if __name__ == "__main__":
    sys.exit(rebuild(WAT, WASM))
