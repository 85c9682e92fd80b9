"""The property bridge: a tiny Wasm filter giving stock Envoy Higress's route_name/cluster_name."""

from __future__ import annotations

import pathlib
from importlib import resources


def bridge_wasm_path() -> pathlib.Path:
    """Path of the shipped bridge.wasm (package data; a real file for installed wheels and source trees)."""
    return pathlib.Path(str(resources.files(__name__).joinpath("bridge.wasm")))
