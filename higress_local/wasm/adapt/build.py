"""Rebuild shim.wasm from shim.wat: ``python -m higress_local.wasm.adapt.build``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..wat import assemble, rebuild

HERE = Path(__file__).resolve().parent
WAT = HERE / "shim.wat"
WASM = HERE / "shim.wasm"


def compile_shim(wat_path: Path = WAT) -> bytes:
    """Assemble the shim's text module."""
    return assemble(wat_path)


if __name__ == "__main__":
    sys.exit(rebuild(WAT, WASM))
