"""${VAR} in hlocal.yaml: Compose's forms, $$ escapes, a clear error for an unset variable."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from higress_local.cli.main import main
from higress_local.config.project import load_project
from higress_local.config.envsubst import expand, expand_text
from higress_local.errors import ConfigError

ENV = {"HOST": "example.com", "EMPTY": "", "PORT": "18080", "FLAG": "true"}


@pytest.mark.parametrize("text,expected", [
    ("${HOST}", "example.com"),
    ("https://${HOST}/x", "https://example.com/x"),
    ("${MISSING:-fallback}", "fallback"),
    ("${EMPTY:-fallback}", "fallback"),  # :- also replaces an empty value
    ("${EMPTY-fallback}", ""),  # - only an unset one
    ("${MISSING-fallback}", "fallback"),
    ("$${HOST}", "${HOST}"),  # $$ escapes
    ("cost: $$5", "cost: $5"),
    ("^/api$", "^/api$"),  # a lone $ (regexes) stays
    ("${HOST:?needed}", "example.com"),
])
def test_forms(text, expected):
    assert expand_text(text, ENV, "hlocal.yaml: x") == expected


def test_an_unset_variable_names_itself_and_the_key_path():
    doc = {"plugins": [{"name": "p", "config": {"url": "http://${API_HOST}/v1"}}]}
    with pytest.raises(ConfigError) as info:
        expand(doc, {}, "hlocal.yaml")
    assert info.value.message == "hlocal.yaml: plugins[0].config.url: environment variable API_HOST is not set"
    assert "${API_HOST:-value}" in info.value.hint and int(info.value.exit_code) == 2


def test_required_with_a_message():
    with pytest.raises(ConfigError) as info:
        expand_text("${TOKEN:?set the API token}", {"TOKEN": ""}, "hlocal.yaml: k")
    assert info.value.message == "hlocal.yaml: k: ${TOKEN} is required: set the API token"


def test_an_invalid_form_is_refused():
    with pytest.raises(ConfigError, match="invalid interpolation"):
        expand_text("${not valid}", ENV, "hlocal.yaml: k")


def test_a_whole_value_becomes_a_number_except_in_plugin_config():
    doc = {"gateway": {"port": "${PORT}", "tls": "${FLAG}"},
           "plugins": [{"name": "p", "priority": "${PORT}", "config": {"port": "${PORT}", "on": "${FLAG}"},
                        "rules": [{"config": {"n": "${PORT}"}}]}]}
    out = expand(doc, ENV, "hlocal.yaml")
    assert out["gateway"] == {"port": 18080, "tls": True}
    assert out["plugins"][0]["priority"] == 18080
    assert out["plugins"][0]["config"] == {"port": "18080", "on": "true"}  # the plugin's JSON keeps strings
    assert out["plugins"][0]["rules"] == [{"config": {"n": "18080"}}]
    assert doc["gateway"]["port"] == "${PORT}"  # the input is not changed


def test_load_project_expands_and_the_cli_reports_exit_2(tmp_path, monkeypatch):
    (tmp_path / "hlocal.yaml").write_text("name: ${STACK:-demo}\ngateway: {port: '${GW_PORT:-0}'}\n"
                                          "routes: [{name: r, prefix: '${PREFIX}'}]\n")
    monkeypatch.setenv("PREFIX", "/api")
    project = load_project(tmp_path)
    assert (project.name, project.gateway.port, project.routes[0].prefix) == ("demo", 0, "/api")
    monkeypatch.delenv("PREFIX")
    result = CliRunner().invoke(main, ["-f", str(tmp_path), "config"])
    assert result.exit_code == 2
    assert "routes[0].prefix: environment variable PREFIX is not set" in result.output
