"""The offline SDK build path the SDK plugin tests rely on builds a real wasm-go plugin."""

from __future__ import annotations

from higress_local.wasm.module import inspect_file


def test_sdk_template_plugin_builds_and_exports_the_higress_abi(sdk_plugin_wasm):
    info = inspect_file(sdk_plugin_wasm("hello"))
    assert info.abi_version == "0.2.100"
    assert "proxy_add_header_map_value" in info.host_functions
