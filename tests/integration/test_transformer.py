"""The official Higress transformer (built by others) on stock Envoy: README examples, rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from support import Project

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "transformer" / "hlocal.yaml"


@pytest.fixture(scope="module")
def readme_stack(module_projects, transformer_wasm, runtime) -> Project:
    """examples/transformer as shipped, on a free port."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["gateway"]["port"] = 0
    config["name"] = f"transformer-readme-{runtime}"
    project = module_projects(config, name="transformer", runtime=runtime)
    (project.path / "build").mkdir()
    shutil.copyfile(transformer_wasm, project.path / "build" / "transformer.wasm")
    result = project.hlocal("up")
    assert result.returncode == 0, result
    return project


def test_readme_examples_hold_as_probes(readme_stack: Project) -> None:
    result = readme_stack.hlocal("probe", "--json")
    assert result.returncode == 0, result
    assert {p["name"]: p["passed"] for p in result.json()["probes"]} == {
        "request headers": True, "query parameters": True, "json body": True,
    }


def test_header_example_as_seen_by_backend(readme_stack: Project) -> None:
    result = readme_stack.hlocal(
        "request", "GET", "/get", "-H", "host: foo.bar.com", "-H", "X-remove: exist",
        "-H", "X-not-renamed: test", "-H", "X-replace: not-replaced",
        "-H", "X-dedupe-unique: 1", "-H", "X-dedupe-unique: 2", "-H", "X-dedupe-unique: 2", "--json",
    )
    assert result.returncode == 0, result
    headers = result.json()["upstream"]["headers"]
    assert "x-remove" not in headers and "x-not-renamed" not in headers
    assert headers["x-renamed"] == ["test"]
    assert headers["x-replace"] == ["replaced"]
    assert headers["x-add-append"] == ["host-foo.bar", "path-get"]
    assert headers["x-map"] == ["host-foo.bar", "path-get"]
    assert headers["x-dedupe-unique"] == ["1", "2"]


def test_query_example_as_seen_by_backend(readme_stack: Project) -> None:
    result = readme_stack.hlocal("request", "GET", "/get?k1=v11&k1=v12&k2=v2", "-H", "x-example: query", "--json")
    upstream = result.json()["upstream"]
    assert upstream["query"] == {"k2-new": ["v2-new"], "k3": ["v31-get", "v32"], "k4": ["v31-get"]}


def test_body_example_as_seen_by_backend(readme_stack: Project) -> None:
    result = readme_stack.hlocal(
        "request", "POST", "/post", "-H", "host: foo.bar.com", "-H", "x-example: body",
        "-H", "content-type: application/json", "-d", '{"a1":"t1","a2":"t2","a3":"t3"}', "--json",
    )
    upstream = result.json()["upstream"]
    assert upstream["json"]["a1-new"] == ["t1-new", "t1-foo.bar-append"]
    assert upstream["json"]["a2-new"] == "t2"
    assert upstream["json"]["a3"] == "t3-new"
    assert "a1" not in upstream["json"] and "a2" not in upstream["json"]
    # A wasm body rewrite goes upstream chunked; the mock read it whole.
    assert "transfer-encoding" in upstream["headers"] or "content-length" in upstream["headers"]


def test_match_route_rule_applies_only_on_its_route(make_project, transformer_wasm, runtime) -> None:
    """Needs the property bridge: stock Envoy has no `route_name` for wasm-go's rule matcher."""
    add = lambda value: {"reqRules": [{"operate": "add", "headers": [{"key": "x-rule", "value": value}]}]}  # noqa: E731
    project = make_project(
        {
            "gateway": {"port": 0},
            "plugins": [{"name": "transformer", "wasm": "t.wasm", "config": add("global"),
                         "rules": [{"match_route": ["api"], "config": add("api-route")}]}],
            "routes": [{"name": "api", "prefix": "/api"}, {"name": "web", "prefix": "/"}],
        },
        files={"t.wasm": transformer_wasm}, name="rules", runtime=runtime,
    )
    assert (up := project.hlocal("up")).returncode == 0, up
    api = project.hlocal("request", "GET", "/api/v1", "--json").json()["upstream"]["headers"]
    web = project.hlocal("request", "GET", "/index.html", "--json").json()["upstream"]["headers"]
    assert api["x-rule"] == ["api-route"]
    assert web["x-rule"] == ["global"]
