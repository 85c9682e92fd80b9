"""The truthful-observation pieces that need no gateway: refusal of every plugin, BadArgument notes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from higress_local.errors import PluginError
from higress_local.inspect.correlate import guess
from higress_local.probe.observe import explain, startup_warnings
from higress_local.wasm.plugins import CheckReport, require_runnable


def _check(name: str, runnable: bool, problem: str = "needs proxy_redis_init") -> SimpleNamespace:
    return SimpleNamespace(plugin=SimpleNamespace(name=name, wasm=Path(f"/p/{name}.wasm")),
                           compat=SimpleNamespace(runnable=runnable, problems=[] if runnable else [problem]))


def test_up_names_every_refused_plugin() -> None:
    report = CheckReport(flavor="envoy", plugins=[_check("a", False), _check("ok", True), _check("b", False, "x")])
    with pytest.raises(PluginError) as caught:
        require_runnable(report)  # type: ignore[arg-type]
    assert "2 plugins cannot run on stock Envoy" in caught.value.message
    assert "'a' (/p/a.wasm): needs proxy_redis_init" in caught.value.message and "'b' (/p/b.wasm): x" in caught.value.message
    assert "'ok'" not in caught.value.message
    require_runnable(CheckReport(flavor="envoy", plugins=[_check("ok", True)]))  # type: ignore[list-item]


def _notes(line: str) -> list[str]:
    project = SimpleNamespace(services=())
    state = SimpleNamespace(services={"auth": SimpleNamespace(cluster="outbound|8080||auth.internal")})
    return explain(project, state, [line], {}, {})  # type: ignore[arg-type]


PREFIX = "[2026-12-02 09:00:00.000][1][error][wasm] [context.cc:1] wasm log p p: "


def test_bad_argument_blames_a_cluster_only_for_a_call() -> None:
    (call,) = _notes(PREFIX + "failed to call auth cluster: error status returned by host: bad argument")
    assert "cluster does not exist" in call and "auth → outbound|8080||auth.internal" in call
    (named,) = _notes(PREFIX + "dispatch to outbound|8080||auth.internl failed: BadArgument")
    assert "did you mean outbound|8080||auth.internal" in named
    (other,) = _notes(PREFIX + "replace response headers failed: error status returned by host: bad argument")
    assert "not about a missing cluster" in other and "cluster does not exist" not in other


def test_startup_warnings_keep_error_and_critical_plugin_lines() -> None:
    lines = [PREFIX.replace("[error]", "[critical]") + "config rejected, deny all",
             PREFIX.replace("[error]", "[info]") + "started",
             "[2026-12-02 09:00:00.000][1][error][config] not a plugin line",
             PREFIX + "cannot parse rule"]
    assert startup_warnings(lines) == ["critical: p: config rejected, deny all", "error: p: cannot parse rule"]


def test_time_window_guess_prefers_same_path_and_skips_other_requests() -> None:
    window = [("backend", {"seq": 5, "method": "GET", "path": "/a", "headers": {"x-hlocal-request-id": ["other"]}}),
              ("backend", {"seq": 6, "method": "GET", "path": "/b", "headers": {}}),
              ("users", {"seq": 2, "method": "GET", "path": "/a", "headers": {}})]
    found = guess(window, "GET", "/a?q=1")
    assert found is not None and (found.where, found.entry["seq"]) == ("users", 2)
    assert "same method and path" in found.matched_by
    assert guess(window[:1], "GET", "/a") is None
