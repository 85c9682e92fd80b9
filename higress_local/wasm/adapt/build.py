"""Rebuild shim.wasm from shim.wat: ``python -m higress_local.wasm.adapt.build``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..wat import rebuild

WAT = Path(__file__).resolve().with_name("shim.wat")
WASM = WAT.with_suffix(".wasm")

if __name__ == "__main__":
    sys.exit(rebuild(WAT))
