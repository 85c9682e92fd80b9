"""`hlocal new`: the name check, the files written, the refusal to overwrite, and their content."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from higress_local.project import newplugin
from higress_local.cli.main import main
from higress_local.config.project import parse_project
from higress_local.errors import ConfigError
from sdk_build import PROXY_WASM_GO_SDK_VERSION, WASM_GO_VERSION  # tests/ is on sys.path (conftest.py)


@pytest.mark.parametrize("name", ["my-plugin", "a", "auth2", "x" * 63, "ai-proxy-v2"])
def test_valid_names(name: str) -> None:
    assert newplugin.check_name(name) == name


@pytest.mark.parametrize("name, hint", [
    ("My_Plugin", "e.g. my-plugin"),
    ("9lives", "e.g. my-plugin"),  # no letter first: the suggestion is the generic one
    ("-x", "e.g. x"),
    ("x-", "e.g. x"),
    ("my plugin", "e.g. my-plugin"),
    ("x" * 64, "at most 63"),
    ("", "starting with a letter"),
])
def test_invalid_names_say_what_is_allowed(name: str, hint: str) -> None:
    with pytest.raises(ConfigError) as caught:
        newplugin.check_name(name)
    assert caught.value.message == f"{name!r} is not a valid plugin name"
    assert hint in caught.value.hint and "lowercase letters, digits and '-'" in caught.value.hint


def test_a_path_is_not_a_name() -> None:
    with pytest.raises(ConfigError, match="is a path") as caught:
        newplugin.check_name("plugins/auth")
    assert "hlocal new auth --dir plugins" in caught.value.hint


def test_writes_a_complete_project(tmp_path: Path) -> None:
    result = newplugin.new_project(tmp_path, "my-plugin")
    project = tmp_path / "my-plugin"
    assert sorted(p.relative_to(project).as_posix() for p in result.written) == [
        ".github/workflows/test.yml", ".gitignore", "README.md", "go.mod", "hlocal.yaml", "main.go", "tests/test_smoke.py"]
    assert all(p.is_file() for p in result.written)
    assert not list(project.rglob("*.tmpl"))
    assert "$" not in "".join(p.read_text() for p in result.written)  # every placeholder filled
    assert any("go.sum" in note and "commit" in note for note in result.notes)
    assert f"  cd {os.path.relpath(project)}" in result.next_steps  # works from where the user stands
    commands = [s.split()[1] for s in result.next_steps if s.strip().startswith("hlocal")]
    assert commands == ["up", "probe", "test", "down"]


def test_go_mod_pins_the_sdk_versions_the_shared_proxy_serves(tmp_path: Path) -> None:
    newplugin.new_project(tmp_path, "pinned")
    go_mod = (tmp_path / "pinned" / "go.mod").read_text()
    assert go_mod.startswith("module pinned\n")
    assert re.search(r"^go 1\.24\.1$", go_mod, re.MULTILINE)  # the SDK's own go.mod asks for 1.24.1
    assert f"github.com/higress-group/wasm-go {WASM_GO_VERSION}\n" in go_mod
    assert f"github.com/higress-group/proxy-wasm-go-sdk {PROXY_WASM_GO_SDK_VERSION}\n" in go_mod
    assert "github.com/tidwall/gjson v1.18.0\n" in go_mod


def test_main_go_registers_the_plugin_under_its_name(tmp_path: Path) -> None:
    newplugin.new_project(tmp_path, "hdr")
    main_go = (tmp_path / "hdr" / "main.go").read_text()
    assert 'wrapper.SetCtx(\n\t\t"hdr",' in main_go
    assert "wrapper.ParseConfig(parseConfig)" in main_go
    assert "wrapper.ProcessRequestHeaders(onHttpRequestHeaders)" in main_go
    assert "func main() {}" in main_go and "\nfunc init() {" in main_go
    assert '"x-hdr"' in main_go and "denied by hdr" in main_go


def test_hlocal_yaml_builds_the_plugin_and_probes_what_it_does(tmp_path: Path) -> None:
    newplugin.new_project(tmp_path, "hdr")
    file = tmp_path / "hdr" / "hlocal.yaml"
    project = parse_project(yaml.safe_load(file.read_text()), file)
    plugin = project.plugins[0]
    assert project.name == "hdr" and plugin.name == "hdr" and plugin.wasm == tmp_path / "hdr" / "main.wasm"
    assert plugin.build is not None and plugin.build.dir == tmp_path / "hdr"
    assert "-mod=mod" in plugin.build.command  # the first build writes go.sum instead of failing on it
    assert plugin.config == {"header": "x-hdr", "value": "hello", "denyPrefixes": ["/admin"]}
    assert [p.name for p in project.probes] == ["adds the header", "answers /admin itself"]
    # the probes check both behaviours of main.go: the header upstream, and the 403 that never reaches it
    raw = yaml.safe_load(file.read_text())["probes"]
    assert raw[0]["expect"]["upstream"]["headers"] == {"x-hdr": "hello"}
    assert raw[1]["expect"] == {"status": 403, "body_contains": "denied by hdr", "upstream": {"received": False}}


def test_smoke_test_is_python_using_the_fixtures(tmp_path: Path) -> None:
    newplugin.new_project(tmp_path, "hdr")
    tree = ast.parse((tmp_path / "hdr" / "tests" / "test_smoke.py").read_text())
    tests = {f.name: {a.arg for a in f.args.args} for f in tree.body if isinstance(f, ast.FunctionDef)}
    assert len(tests) == 4 and all(name.startswith("test_") for name in tests)
    assert set().union(*tests.values()) == {"gateway", "upstream", "plugin_logs"}


def test_gitignore_keeps_go_sum(tmp_path: Path) -> None:
    newplugin.new_project(tmp_path, "hdr")
    patterns = [line for line in (tmp_path / "hdr" / ".gitignore").read_text().splitlines()
                if line and not line.startswith("#")]
    assert "main.wasm" in patterns and ".hlocal/" in patterns and "go.sum" not in patterns


def test_refuses_a_non_empty_folder_unless_forced(tmp_path: Path) -> None:
    mine = tmp_path / "hdr" / "notes.txt"
    mine.parent.mkdir()
    mine.write_text("keep me")
    with pytest.raises(ConfigError, match="already exists and is not empty") as caught:
        newplugin.new_project(tmp_path, "hdr")
    assert "--force" in caught.value.hint
    assert not (tmp_path / "hdr" / "go.mod").exists()
    newplugin.new_project(tmp_path, "hdr", force=True)
    assert (tmp_path / "hdr" / "go.mod").is_file() and mine.read_text() == "keep me"


def test_an_empty_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "hdr").mkdir()
    assert len(newplugin.new_project(tmp_path, "hdr").written) == 7


def test_refuses_a_file_of_that_name(tmp_path: Path) -> None:
    (tmp_path / "hdr").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        newplugin.new_project(tmp_path, "hdr", force=True)


def test_every_template_is_used_and_found() -> None:
    from importlib import resources

    root = resources.files("higress_local") / "templates" / "new"
    on_disk = {p.relative_to(Path(str(root))).as_posix() for p in Path(str(root)).rglob("*.tmpl")}
    assert on_disk == {template for template, _ in newplugin.FILES}


def test_cli_new_prints_the_files_and_next_steps(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "edge", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"wrote {tmp_path / 'edge' / 'main.go'}" in result.output
    assert "hlocal up" in result.output and "hlocal test" in result.output


def test_cli_new_bad_name_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "Edge!", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "error: 'Edge!' is not a valid plugin name" in result.output
    assert not (tmp_path / "Edge!").exists()


def test_the_generated_readme_deploys_with_hlocal_push(tmp_path: Path) -> None:
    """The plugin's README ships it the way hlocal does (`hlocal push` of the OCI layout Higress loads)."""
    from higress_local.project.push import ImageRef

    newplugin.new_project(tmp_path, "my-plugin")
    readme = (tmp_path / "my-plugin" / "README.md").read_text()
    deploy = readme.split("## Deploy", 1)[1]
    assert "Dockerfile" not in deploy and "FROM scratch" not in deploy
    (push,) = [line.split("#")[0].split() for line in deploy.splitlines() if line.startswith("hlocal push")]
    assert push[:3] == ["hlocal", "push", "my-plugin"]  # the plugin's name in hlocal.yaml
    config = yaml.safe_load((tmp_path / "my-plugin" / "hlocal.yaml").read_text())
    assert config["plugins"][0]["name"] == push[2]
    assert ImageRef.parse(push[3]).tag == "1.0.0"  # a reference `hlocal push` accepts
    assert "hlocal export higress" in deploy


# -- the CI workflow ------------------------------------------------------------------------------

class _Metadata:
    def __init__(self, urls: list[str]) -> None:
        self.urls = urls

    def get_all(self, key: str) -> list[str]:
        assert key == "Project-URL"
        return self.urls


@pytest.mark.parametrize("urls, repository", [
    ([], None),
    (["Documentation, https://docs.example.com/hlocal"], None),
    (["Homepage, https://example.com", "Repository, https://github.com/acme/hlocal.git"], "acme/hlocal"),
    (["Source, https://github.com/acme/hlocal/"], "acme/hlocal"),
])
def test_the_action_repository_comes_from_the_package_metadata(monkeypatch, urls, repository) -> None:
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "metadata", lambda name: _Metadata(urls))
    assert newplugin.action_repository() == repository


def test_the_workflow_uses_the_action_at_this_version(monkeypatch, tmp_path: Path) -> None:
    from higress_local import __version__

    monkeypatch.setattr(newplugin, "action_repository", lambda: None)
    text = newplugin.render_files("my-plugin")[".github/workflows/test.yml"]
    assert f"      - uses: OWNER/hlocal@v{__version__}\n" in text
    assert "# OWNER/hlocal: put the GitHub repository you take hlocal from" in text
    monkeypatch.setattr(newplugin, "action_repository", lambda: "acme/hlocal")
    text = newplugin.render_files("my-plugin", "mcp")[".github/workflows/test.yml"]
    assert f"      - uses: acme/hlocal@v{__version__}\n" in text and "OWNER" not in text
    steps = yaml.safe_load(text)["jobs"]["test"]["steps"]
    assert steps[0] == {"uses": "actions/checkout@v4"}
