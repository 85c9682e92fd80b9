"""gateway.access_log_format and Higress's stats tags: parsed, rendered as Istio renders them, and
checked by a real Envoy (`envoy --mode validate`, 0.05-0.1 s) before a stack starts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from higress_local.config.project import parse_project
from higress_local.errors import ConfigError, ExitCode
from higress_local.render.envoy import Layout, render_bootstrap
from higress_local.render.fidelity import ACCESS_LOG_FORMAT, STATS_TAGS
from higress_local.runtime.docker import _is_access_entry
from higress_local.runtime.logformat import check_access_log_format

FILE = Path("/x/proj/hlocal.yaml")
LAYOUT = Layout(flavor="envoy", listen_address="127.0.0.1", listen_port=1, admin_address="127.0.0.1", admin_port=2,
                backend_address="127.0.0.1", backend_port=3, ecds_dir="/e", xds_dir="/x", access_log="/l/access.log")


def project(log_format=None, **gateway):
    if log_format is not None:
        gateway["access_log_format"] = log_format
    return parse_project({"name": "demo", "gateway": gateway}, FILE)


def log_format_of(doc: dict) -> dict:
    (listener,) = doc["static_resources"]["listeners"]
    (log,) = listener["filter_chains"][0]["filters"][0]["typed_config"]["access_log"]
    return log["typed_config"]["log_format"]


# -- Higress's values, by value ---------------------------------------------------------------------


def test_default_format_is_higress_accesslogformat_byte_for_byte():
    # sha256 of the accessLogFormat value in alibaba/higress helm/core/templates/configmap.yaml (v2.2.4).
    assert hashlib.sha256(ACCESS_LOG_FORMAT.encode()).hexdigest() == (
        "9bb713f1a15453f668337eba87468aaf97c0d2b579e541e004cee34a43f7b704")
    keys = [part.split('":"')[0].strip('{"') for part in ACCESS_LOG_FORMAT.split('","')]
    assert keys == ["ai_log", "authority", "bytes_received", "bytes_sent", "downstream_local_address",
                    "downstream_remote_address", "duration", "istio_policy_status", "method", "path", "protocol",
                    "request_id", "requested_server_name", "response_code", "response_flags", "route_name",
                    "start_time", "trace_id", "upstream_cluster", "upstream_host", "upstream_local_address",
                    "upstream_service_time", "upstream_transport_failure_reason", "user_agent", "x_forwarded_for",
                    "response_code_details"]


def test_stats_tags_are_higress_bootstrap_list_in_its_order():
    assert [t["tag_name"] for t in STATS_TAGS] == [
        "wasm_runtime", "thread_name", "plugin_name", "ai_route", "ai_cluster", "ai_model", "ai_consumer",
        "response_code_class", "listener_address", "http_conn_manager_prefix", "cluster_name"]
    assert STATS_TAGS[0]["regex"] == r"^wasm\.envoy\.wasm\.(.*?\.)plugin"
    assert STATS_TAGS[-1]["regex"] == (r"^cluster\.((.*?)\.)(http1\.|http2\.|health_check\.|zone\.|external\.|"
                                       r"circuit_breakers\.|[^\.]+$)")
    assert render_bootstrap(project(), LAYOUT)["stats_config"]["use_all_default_tags"] is False


# -- gateway.access_log_format in hlocal.yaml ----------------------------------------------------------


def test_unset_means_higress_format_and_a_given_one_is_kept_as_written():
    assert project().gateway.access_log_format is None
    assert project("[%START_TIME%] %REQ(:PATH)%").gateway.access_log_format == "[%START_TIME%] %REQ(:PATH)%"


@pytest.mark.parametrize(("value", "problem"), [
    ({"path": "%REQ(:PATH)%"}, "expected text, got a mapping"),  # unquoted JSON is a YAML mapping
    (42, "expected text, got an integer"),
    ("  ", "is empty"),
])
def test_a_format_that_is_not_text_is_refused_with_the_key(value, problem):
    with pytest.raises(ConfigError) as caught:
        project(value)
    assert caught.value.message == f"hlocal.yaml: gateway.access_log_format: {problem}"
    assert caught.value.hint


def test_a_misspelt_key_suggests_access_log_format():
    with pytest.raises(ConfigError, match="unknown key") as caught:
        project(access_log_fromat="x")
    assert "did you mean 'access_log_format'" in caught.value.hint


def test_a_custom_format_is_rendered_as_istio_renders_it():
    plain = log_format_of(render_bootstrap(project("%REQ(:PATH)% %RESPONSE_CODE%"), LAYOUT))
    assert plain == {"text_format_source": {"inline_string": "%REQ(:PATH)% %RESPONSE_CODE%\n"}}
    ends = log_format_of(render_bootstrap(project("%PROTOCOL%\n"), LAYOUT))
    assert ends["text_format_source"]["inline_string"] == "%PROTOCOL%\n"  # no second newline
    both = log_format_of(render_bootstrap(project("%REQ_WITHOUT_QUERY(:PATH)% %METADATA(ROUTE:a)%"), LAYOUT))
    assert [f["name"] for f in both["formatters"]] == ["envoy.formatter.req_without_query", "envoy.formatter.metadata"]


# -- Envoy itself checks the format -----------------------------------------------------------------------


@pytest.mark.parametrize("log_format", [
    ACCESS_LOG_FORMAT,
    '{"body":"%FILTER_STATE(wasm.log-request-body:PLAIN)%"} 100%%',
    "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)% %METADATA(ROUTE:a)% %START_TIME(%s)% %REQ(USER-AGENT):10%",
])
def test_envoy_accepts_good_formats(log_format):
    check_access_log_format(project(log_format))


@pytest.mark.parametrize(("log_format", "message", "hint"), [
    ('{"a":"%REQ(:PATH)%","b":"%RESPONSE_COD%"}', "%RESPONSE_COD% is not an access-log command this Envoy knows",
     "envoyproxy.io"),
    ('{"a":"%REQ(:PATH"}', "no complete command at character 7: '%REQ(:PATH\"}'", "literal % as %%"),
    ("done 100%", "no complete command at character 9: '%'", "literal % as %%"),
    ("%REQ(X):ten%", "no complete command at character 1: '%REQ(X):ten%'", "%NAME(ARG):LENGTH%"),
])
def test_envoy_refuses_bad_formats_naming_key_and_command(log_format, message, hint):
    with pytest.raises(ConfigError) as caught:
        check_access_log_format(project(log_format))
    assert caught.value.message == f"hlocal.yaml: gateway.access_log_format: {message}"
    assert hint in caught.value.hint
    assert caught.value.exit_code == ExitCode.USAGE


# -- docker: `hlocal logs access` reads the gateway's output -------------------------------------------------


def test_docker_access_entries_are_json_by_default_and_any_non_envoy_line_with_a_custom_format():
    envoy_line = "[2026-12-07 09:11:00.624][1][info][wasm] [source/extensions/common/wasm/context.cc:1] x"
    assert _is_access_entry('{"path":"/a"}') and not _is_access_entry("GET /a 200")
    assert _is_access_entry("GET /a 200", any_text=True)
    assert not _is_access_entry(envoy_line) and not _is_access_entry(envoy_line, any_text=True)
    assert not _is_access_entry("", any_text=True)
