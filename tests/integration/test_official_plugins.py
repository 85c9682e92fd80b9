"""The census: every official Higress plugin runs on the embedded runtime (stock Envoy, native).

Each plugin of Higress's ``plugins/wasm-go/extensions`` (examples and tests included) and the Go MCP
servers of ``plugins/wasm-go/mcp-servers`` is built from Higress's own source (tests/higress_build.py,
offline, cached) and must be: not refused by `hlocal check` (no problem from the compatibility check or
the adaptation plan), adapted into a module a real engine (wasmtime) validates, with exactly the
emulations listed below; and one `hlocal check --json` over all of them says each runs on the native
runtime and names the emulations the plan applies. A plugin that does not build here is an xfail whose
reason is the compiler's first error line, checked against the known cause below, never a silent skip.
The other ``mcp-servers`` folders (mcp-time, mcp-openweather, ...) hold only an ``mcp-server.yaml``: they
are configurations of ``extensions/mcp-server``, not plugins of their own (see test_mcp_servers.py).
Loading a sample into a real Envoy: test_official_plugins_envoy.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

from plugin_build import PluginBuildError, _go_version, find_go

pytestmark = pytest.mark.slow

EXTENSIONS = (
    "ai-agent", "ai-cache", "ai-history", "ai-image-reader", "ai-intent", "ai-json-resp", "ai-load-balancer",
    "ai-prompt-decorator", "ai-prompt-template", "ai-proxy", "ai-quota", "ai-rag", "ai-search",
    "ai-security-guard", "ai-statistics", "ai-token-ratelimit", "ai-transformer", "api-workflow", "basic-auth",
    "bot-detect", "cache-control", "chatgpt-proxy", "cluster-key-rate-limit", "cors", "custom-response",
    "de-graphql", "ext-auth", "frontend-gray", "gc-test", "gw-error-format", "hello-world", "hmac-auth-apisix",
    "http-call", "ip-restriction", "jsonrpc-converter", "jwt-auth", "key-auth", "log-request-response",
    "mcp-router", "mcp-server", "model-mapper", "model-router", "oidc", "opa", "replay-protection",
    "request-block", "request-validation", "response-cache", "simple-jwt-auth", "sni-misdirect",
    "streaming-body-example", "traffic-editor", "traffic-tag", "transformer", "waf",
)
MCP_SERVERS = ("amap-tools", "quark-search")  # the folders of mcp-servers/ with a go.mod
OFFICIAL = [f"extensions/{n}" for n in EXTENSIONS] + [f"mcp-servers/{n}" for n in MCP_SERVERS]

# Plugins Go 1.27 cannot build here, with the start of their first error line (checked on every run).
DOES_NOT_BUILD = {
    # Higress's own source is stale: main.go uses wrapper's `Log`, which its pinned wasm-go v1.0.0 lacks.
    "extensions/gc-test": "./main.go:28:59: undefined: Log",
    # The offline module proxy here holds only a placeholder (a go.mod, no packages) of its dependency
    # github.com/higress-group/oauth2-proxy; with the real module proxy it builds.
    "extensions/oidc": 'main.go:9:2: no matching versions for query "latest"',
}

# The Higress-only host functions each plugin needs emulated (every other official plugin: none).
# decoder_buffer_limit (the 413 of a request body buffered past the limit) is not listed: every Go
# module with a request-body callback gets it.
EMULATIONS: dict[str, set[str]] = {
    "extensions/ai-cache": {"redis"},
    "extensions/ai-history": {"redis"},
    "extensions/ai-quota": {"redis"},
    "extensions/ai-token-ratelimit": {"redis"},
    "extensions/cluster-key-rate-limit": {"redis"},
    "extensions/replay-protection": {"redis"},
    "extensions/response-cache": {"redis"},
    "extensions/ai-load-balancer": {"redis", "upstream_hosts"},
    "extensions/ai-security-guard": {"inject_encoded_data", "get_log_level"},
    "extensions/mcp-server": {"inject_encoded_data"},
    "mcp-servers/amap-tools": {"inject_encoded_data"},
    "mcp-servers/quark-search": {"inject_encoded_data"},
    "extensions/ai-proxy": {"get_log_level"},
    "extensions/ai-statistics": {"get_log_level"},
}
BEHAVIOUR_ONLY = {"decoder_buffer_limit"}  # plan keys that are not host-function emulations
_CHATTER = re.compile(r"^(go: (downloading|finding|extracting) |# )")


def build_error_line(error: PluginBuildError) -> str:
    """The compiler's first line that is an error, not progress chatter."""
    lines = [line for line in (error.stderr or str(error)).splitlines() if line.strip()]
    return next((line for line in lines if not _CHATTER.match(line)), lines[0] if lines else str(error))


@pytest.fixture(scope="module")
def official(higress_plugin_wasm) -> Callable[[str], Path | PluginBuildError]:
    """Each official plugin built once per module: its .wasm, or the build's error (also remembered)."""
    results: dict[str, Path | PluginBuildError] = {}

    def get(path: str) -> Path | PluginBuildError:
        if path not in results:
            try:
                results[path] = higress_plugin_wasm(path)
            except PluginBuildError as exc:
                results[path] = exc
        return results[path]

    return get


def built_or_xfail(official, path: str) -> Path:
    """The plugin's module; an expected build failure is an xfail naming the compiler's error."""
    result = official(path)
    if isinstance(result, PluginBuildError):
        line = build_error_line(result)
        if path in DOES_NOT_BUILD and line.startswith(DOES_NOT_BUILD[path]):
            pytest.xfail(f"{path} does not build with {_go_version(find_go())} here: {line}")
        pytest.fail(f"{path} does not build: {line}\n{result}", pytrace=False)
    assert path not in DOES_NOT_BUILD, f"{path} builds now: remove it from DOES_NOT_BUILD (and the README)"
    return result


def test_the_census_names_every_official_plugin(higress_plugin_wasm) -> None:
    from higress_build import higress_src_dir

    root = higress_src_dir()
    on_disk = {f"{kind}/{p.name}" for kind in ("extensions", "mcp-servers") for p in (root / kind).iterdir()
               if (p / "go.mod").is_file()}
    assert on_disk == set(OFFICIAL), f"new: {sorted(on_disk - set(OFFICIAL))}; gone: {sorted(set(OFFICIAL) - on_disk)}"
    assert len(EXTENSIONS) == 55
    for config_only in ("mcp-time", "mcp-openweather"):  # REST-to-MCP servers: configurations, not plugins
        assert (root / "mcp-servers" / config_only / "mcp-server.yaml").is_file()


@pytest.mark.parametrize("path", OFFICIAL)
def test_official_plugin_is_not_refused_and_adapts_to_a_valid_module(path: str, official) -> None:
    import wasmtime

    from higress_local.wasm.adapt.adapter import adapt_module
    from higress_local.wasm.adapt.catalog import BY_HOST_FUNCTION
    from higress_local.wasm.adapt.plan import plan_for
    from higress_local.wasm.compat import check_compatibility
    from higress_local.wasm.module import STOCK_ABI_EXPORT, inspect_bytes

    data = built_or_xfail(official, path).read_bytes()
    info = inspect_bytes(data, path)
    compat = check_compatibility(info, "envoy")
    plan = plan_for(info)
    assert compat.runnable and not compat.problems, compat.problems
    assert not plan.problems, plan.problems
    assert set(plan.emulations) - BEHAVIOUR_ONLY == EMULATIONS.get(path, set()), plan.adaptations
    adapted = adapt_module(data, name=path)
    wasmtime.Module.validate(wasmtime.Engine(), adapted)  # raises on an invalid module
    served = inspect_bytes(adapted, f"adapted {path}")
    assert served.abi_version == "0.2.1" and STOCK_ABI_EXPORT in served.export_names
    assert not set(served.host_functions) & set(BY_HOST_FUNCTION), served.host_functions  # nothing Higress-only left
    assert check_compatibility(served, "envoy").runnable


def test_check_says_every_official_plugin_runs_on_the_native_runtime(official, make_project) -> None:
    from higress_local.wasm.adapt.plan import plan_for
    from higress_local.wasm.module import inspect_file

    modules = {path: official(path) for path in OFFICIAL}
    modules = {path: wasm for path, wasm in modules.items() if isinstance(wasm, Path)}
    assert len(modules) == len(OFFICIAL) - len(DOES_NOT_BUILD)
    names = {path: path.split("/", 1)[1] for path in modules}
    # One project, every module by its absolute path (nothing copied), one `check` call.
    project = make_project({"gateway": {"port": 0}, "plugins": [
        {"name": names[path], "wasm": str(wasm)} for path, wasm in modules.items()]}, name="census", runtime="native")
    check = project.hlocal("check", "--json", timeout=600)
    assert check.returncode == 0, check
    doc = check.json()
    assert doc["runnable"] and doc["flavor"] == "envoy"
    reported = {p["name"]: p for p in doc["plugins"]}
    assert set(reported) == set(names.values())
    for path, wasm in modules.items():
        entry, plan = reported[names[path]], plan_for(inspect_file(wasm))
        assert entry["runnable"] and entry["runs_on"]["native (stock Envoy)"] and not entry["problems"], entry
        assert {e["key"] for e in entry["emulations"]} == EMULATIONS.get(path, set()), (path, entry["emulations"])
        assert all(e["differs"] for e in entry["emulations"]), (path, entry["emulations"])  # each says how it differs
        assert set(plan.adaptations) <= set(entry["adaptations"]), (path, entry["adaptations"])
        for name in set(entry["foreign_functions"]) - set(plan.emulations):  # answered NotFound: a note says so
            assert any(f"foreign function {name} " in note for note in entry["notes"]), (path, name, entry["notes"])
