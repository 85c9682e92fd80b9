"""Rebuild bridge.wasm from bridge.wat: ``python -m higress_local.wasm.bridge.build``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..wat import rebuild

WAT = Path(__file__).resolve().with_name("bridge.wat")
WASM = WAT.with_suffix(".wasm")

if __name__ == "__main__":
    sys.exit(rebuild(WAT))
