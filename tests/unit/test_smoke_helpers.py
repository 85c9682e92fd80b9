"""Pure parts of the smoke-test support: journal views, `hlocal init` templates, `hlocal test` arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from higress_local.cli.main import main
from higress_local.config.project import parse_project, parse_rules
from higress_local.errors import ConfigError
from higress_local.probe.exchanges import Headers, UpstreamRequest
from higress_local.testing.pytest_plugin import find_hlocal_file
from higress_local.project.scaffold import init_project
from higress_local.project.scaffold import plugin_name, render_config, render_smoke_test
from higress_local.testing.testrun import gives_paths, pytest_argv

ENTRY = {"seq": 4, "method": "POST", "path": "/api", "query": {"a": ["1", "2"]},
         "headers": {"X-Multi": ["a", "b"], "content-type": ["application/json"]},
         "body": '{"k": 1}', "json": {"k": 1}}


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    headers = UpstreamRequest.from_entry(ENTRY).headers
    assert headers["x-multi"] == "a, b" and headers["X-MULTI"] == "a, b"
    assert headers.getall("x-multi") == ["a", "b"] and headers.getall("absent") == []
    assert "Content-Type" in headers and "absent" not in headers
    assert dict(headers) == {"x-multi": "a, b", "content-type": "application/json"}
    with pytest.raises(KeyError):
        headers["absent"]


def test_upstream_request_from_a_journal_entry() -> None:
    received = UpstreamRequest.from_entry(ENTRY)
    assert (received.method, received.path, received.query, received.json, received.seq) == \
        ("POST", "/api", {"a": ["1", "2"]}, {"k": 1}, 4)
    assert received.body_bytes == b'{"k": 1}'
    binary = UpstreamRequest.from_entry({**ENTRY, "body": None, "body_base64": "AAE="})
    assert binary.body_bytes == b"\x00\x01"
    assert repr(Headers({"a": ["1"]})) == "Headers({'a': ['1']})"


def test_marker_rules_are_validated_like_hlocal_yaml() -> None:
    (rule,) = parse_rules([{"match_route": ["api"], "config": {"x": 1}}], "marker")
    assert rule.to_higress() == {"_match_route_": ["api"], "x": 1}
    with pytest.raises(ConfigError, match=r"marker: rules\[0\]: a rule needs at least one of"):
        parse_rules([{"config": {}}], "marker")
    with pytest.raises(ConfigError, match=r"marker: rules\[0\]\.confg: unknown key") as raised:
        parse_rules([{"match_route": ["a"], "confg": {}}], "marker")
    assert "did you mean 'config'" in raised.value.hint


@pytest.mark.parametrize("runtime,build", [("native", None), ("native", ""), ("docker", "."), ("native", "src")])
def test_the_init_config_is_valid_for_every_variant(tmp_path: Path, runtime: str, build: str | None) -> None:
    text = render_config(name="demo", plugin="my-plugin", wasm="./main.wasm", build=build, runtime=runtime,
                         why_docker="imports proxy_redis_init")
    project = parse_project(yaml.safe_load(text), tmp_path / "hlocal.yaml")
    plugin = project.plugin("my-plugin")
    assert project.runtime == runtime and project.gateway.port == 0 and plugin.config == {}
    assert (plugin.build is None) == (build is None)
    if build:
        assert plugin.build.dir == (tmp_path / build).resolve()
    assert [p.name for p in project.probes] == ["reaches the backend"]
    assert ("proxy_redis_init" in text) == (runtime == "docker")


def test_the_init_smoke_test_compiles_and_names_the_plugin() -> None:
    source = render_smoke_test("my-plugin")
    compile(source, "test_smoke.py", "exec")
    assert "def test_request_reaches_the_backend(gateway, upstream):" in source
    assert 'plugin="my-plugin"' in source


def test_plugin_name_from_go_mod_or_directory(tmp_path: Path) -> None:
    directory = tmp_path / "My Plugin"
    directory.mkdir()
    assert plugin_name(directory) == "my-plugin"
    (directory / "go.mod").write_text("// comment\nmodule github.com/acme/Key_Auth/\n\ngo 1.24\n")
    assert plugin_name(directory) == "key_auth"


def test_init_detects_go_mod_and_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/greeter\n")
    runner = CliRunner()
    first = runner.invoke(main, ["-f", str(tmp_path), "init"])
    assert first.exit_code == 0, first.output
    doc = yaml.safe_load((tmp_path / "hlocal.yaml").read_text())
    assert doc["plugins"][0] == {"name": "greeter", "wasm": "./main.wasm", "build": {}, "config": {}}
    assert "main.wasm is not built yet" in first.output
    again = runner.invoke(main, ["-f", str(tmp_path), "init"])
    assert again.exit_code == 2 and "already exists" in again.output and "--force" in again.output
    forced = runner.invoke(main, ["-f", str(tmp_path), "init", "--force"])
    assert forced.exit_code == 0, forced.output


def test_init_marks_the_config_todo_with_the_keys_the_go_sources_read(tmp_path: Path) -> None:
    """`config: {}` would be rejected by a plugin that needs keys (the `new` template needs `value`): say so."""
    template = Path(__file__).resolve().parents[2] / "higress_local" / "templates" / "new" / "main.go.tmpl"
    (tmp_path / "main.go").write_text(template.read_text().replace("${name}", "greeter"))
    (tmp_path / "go.mod").write_text("module example.com/greeter\n")
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "init"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "hlocal.yaml").read_text()
    assert "config: {}                  # TODO fill in what the plugin reads: header, value, denyPrefixes" in text
    assert "placeholder (TODO)" in result.output and "read header, value, denyPrefixes" in result.output
    assert "rejects it at `hlocal up` (exit 4)" in result.output
    (tmp_path / "main.go").write_text("package main\n")  # nothing to name: the TODO stays generic
    again = CliRunner().invoke(main, ["-f", str(tmp_path), "init", "--force"])
    assert again.exit_code == 0 and "placeholder (TODO)" in again.output, again.output
    assert "# TODO the plugin's configuration" in (tmp_path / "hlocal.yaml").read_text()


def test_init_without_a_module_or_go_mod_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "init"])
    assert result.exit_code == 2
    assert "no main.wasm and no go.mod" in result.output and "--wasm" in result.output
    assert not (tmp_path / "hlocal.yaml").exists()


def test_hlocal_test_runs_the_projects_tests_unless_paths_are_given(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "hlocal.yaml").write_text("plugins: []\n")
    project = parse_project({"plugins": []}, tmp_path / "hlocal.yaml")
    argv = pytest_argv(project, ["-k", "smoke"], cwd=tmp_path)
    assert argv[-4:] == ["--hlocal-attach", "-k", "smoke", str(tmp_path / "tests")]
    assert "--hlocal-file" in argv and str(tmp_path / "hlocal.yaml") in argv
    assert gives_paths(["tests::test_x", "-x"], tmp_path) is True
    assert gives_paths(["-k", "smoke"], tmp_path) is False
    assert pytest_argv(project, ["tests"], cwd=tmp_path)[-1] == "tests"


def test_hlocal_yaml_is_found_from_the_current_directory_up(tmp_path: Path) -> None:
    (tmp_path / "hlocal.yaml").write_text("plugins: []\n")
    nested = tmp_path / "tests" / "deeper"
    nested.mkdir(parents=True)
    assert find_hlocal_file(nested, nested) == tmp_path / "hlocal.yaml"
    elsewhere = tmp_path.parent / f"{tmp_path.name}-empty"
    elsewhere.mkdir()
    assert find_hlocal_file(elsewhere, tmp_path) == tmp_path / "hlocal.yaml"


def test_init_writes_a_gitignore_for_the_stack_state_but_never_touches_one_that_exists(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/p\n")
    written = init_project(tmp_path).written
    assert tmp_path / ".gitignore" in written
    assert (tmp_path / ".gitignore").read_text().splitlines()[1:] == [".hlocal/", "main.wasm"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "go.mod").write_text("module example.com/q\n")
    (other / ".gitignore").write_text("*.log\n")
    result = init_project(other)
    assert (other / ".gitignore").read_text() == "*.log\n"
    assert any(".hlocal/" in note for note in result.notes)
