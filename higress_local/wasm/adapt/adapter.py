"""Adapt a Higress-built module for stock Envoy: the ABI rename plus the emulated host functions.

Technique (why not WABT): `wasm2wat --generate-names`, an edit and `wat2wasm` does work, but takes
seconds and hundreds of MB of text for an 8 MB module, more than a tenth of Envoy's own load time
for the large modules Higress plugins are. hlocal instead edits the binary in Python (`merge.py`):
new functions, types, globals and data are appended, so no existing index moves; imports only Higress
has keep their slots, re-pointed to stock host functions; and only the function bodies that call a
redirected import are decoded (found by a byte search, confirmed by decoding). The replacement
functions are written in WebAssembly text (`shim.wat`, assembled into `shim.wasm`), so what they do
can be read as code. The result is validated by Envoy itself in the tests, and cached by content.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import resources

from ...errors import PluginError
from ..module import HIGRESS_ABI_EXPORT, STOCK_ABI_EXPORT, adapt_for_stock_envoy, inspect_bytes
from .binary import AdaptError, Module, data_segment_ranges, parse_module
from .cache import cached
from .merge import merge
from .plan import DEFAULT_REQUEST_BUFFER_LIMIT, SCRATCH, plan_for

# Bump when the output for the same input and parameters changes (shim.wasm changes are hashed in).
ADAPTER_VERSION = "2"


@lru_cache(maxsize=1)
def code_digest() -> bytes:
    """The adapter's own Python source: a change to how modules are merged changes every cache key,
    so a cached copy made by older code is never served (no ADAPTER_VERSION bump to forget)."""
    digest = hashlib.sha256()
    folder = resources.files(__package__)
    for name in sorted(p.name for p in folder.iterdir() if p.name.endswith(".py")):
        digest.update(name.encode() + b"\0" + folder.joinpath(name).read_bytes())
    return digest.digest()


@lru_cache(maxsize=1)
def shim_bytes() -> bytes:
    return resources.files(__package__).joinpath("shim.wasm").read_bytes()


@lru_cache(maxsize=1)
def _shim() -> Module:
    return parse_module(shim_bytes(), "hlocal shim")


def _check_scratch(m: Module) -> None:
    low, high = SCRATCH
    for start, end in data_segment_ranges(m):
        if start < high and end > low:
            raise AdaptError(f"a data segment initialises memory [{start}, {end}), which overlaps the "
                             f"range [{low}, {high}) hlocal's emulation needs (not a Go wasip1 build?)")


def cache_key(sha256_hex: str, wasm_log_level: str, upstream_hosts: bytes = b"",
              request_buffer_limit: int = DEFAULT_REQUEST_BUFFER_LIMIT) -> str:
    """Input content + shim + the adapter's code + parameters: equal keys, equal output."""
    digest = hashlib.sha256()
    digest.update(bytes.fromhex(sha256_hex))
    digest.update(hashlib.sha256(shim_bytes()).digest())
    digest.update(code_digest())
    digest.update(json.dumps({"version": ADAPTER_VERSION, "wasm_log_level": wasm_log_level,
                              "request_buffer_limit": request_buffer_limit}).encode())
    if upstream_hosts:  # only then: every other module keeps its cached copy
        digest.update(hashlib.sha256(upstream_hosts).digest())
    return digest.hexdigest()


def adapt_module(data: bytes, *, wasm_log_level: str = "info", name: str = "module",
                 upstream_hosts: bytes = b"", request_buffer_limit: int = DEFAULT_REQUEST_BUFFER_LIMIT) -> bytes:
    """The copy stock Envoy loads: raises PluginError naming what cannot be emulated and why.

    `upstream_hosts`: the table adapt/upstream.py makes (written in only if the module lists hosts)."""
    data = bytes(data)
    info = inspect_bytes(data, name)
    plan = plan_for(info, wasm_log_level, upstream_hosts, request_buffer_limit)
    if "upstream_hosts" not in plan.emulations:
        upstream_hosts = b""
    if plan.problems:
        raise PluginError(f"{name} cannot run on stock Envoy: {'; '.join(plan.problems)}",
                          "run it on the Higress gateway: `--runtime docker` with gateway.flavor: higress")
    if not plan.rewrites:
        return adapt_for_stock_envoy(data, name)
    if HIGRESS_ABI_EXPORT in info.export_names and STOCK_ABI_EXPORT not in info.export_names:
        plan.merge.renames[HIGRESS_ABI_EXPORT] = STOCK_ABI_EXPORT

    def produce() -> bytes:
        try:
            module = parse_module(data, name)
            _check_scratch(module)
            return merge(module, _shim(), plan.merge)
        except AdaptError as exc:
            raise PluginError(f"{name}: hlocal cannot emulate {', '.join(plan.emulations)} in this module: {exc}",
                              "run it on the Higress gateway: `--runtime docker` with gateway.flavor: higress") from None

    return cached(cache_key(info.sha256, wasm_log_level, upstream_hosts, request_buffer_limit), produce)
