"""gateway.access_log_format with Higress's official log-request-response plugin, and Higress's stats
tags on /stats/prometheus, on a real Envoy started by `hlocal up`.

The plugin is configured as its README (alibaba/higress plugins/wasm-go/extensions/log-request-response)
says, and the access-log format is Higress's plus the four fields that README tells users to add.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from higress_local.render.fidelity import ACCESS_LOG_FORMAT
from support import Project, wait_for

pytestmark = pytest.mark.slow

PLUGIN_CONFIG = {  # the README's example, as written there
    "request": {"headers": {"enabled": True},
                "body": {"enabled": True, "maxSize": 10240,
                         "contentTypes": ["application/json", "application/xml",
                                          "application/x-www-form-urlencoded", "text/plain"]}},
    "response": {"headers": {"enabled": True},
                 "body": {"enabled": True, "maxSize": 10240,
                          "contentTypes": ["application/json", "application/xml", "text/plain", "text/html"]}},
}
README_FIELDS = ('"request_headers":"%FILTER_STATE(wasm.log-request-headers:PLAIN)%",'
                 '"request_body":"%FILTER_STATE(wasm.log-request-body:PLAIN)%",'
                 '"response_headers":"%FILTER_STATE(wasm.log-response-headers:PLAIN)%",'
                 '"response_body":"%FILTER_STATE(wasm.log-response-body:PLAIN)%"}')
LOG_FORMAT = ACCESS_LOG_FORMAT[:-1] + "," + README_FIELDS
REPLY = '{"id":123,"status":"success"}'
SENT = '{"name":"hlocal","email":"test@example.com"}'


@pytest.fixture(scope="module")
def stack(module_projects, higress_plugin_wasm, runtime) -> Project:
    project = module_projects({
        "gateway": {"port": 0, "access_log_format": LOG_FORMAT},
        "plugins": [{"name": "log-request-response", "wasm": "plugin.wasm", "config": PLUGIN_CONFIG}],
        "routes": [{"name": "users", "prefix": "/api"}],
        "backend": {"stubs": [{"match": {"path": "/api/users"},
                               "respond": {"status": 201, "headers": {"content-type": "application/json"},
                                           "body": REPLY}}]},
    }, files={"plugin.wasm": higress_plugin_wasm("extensions/log-request-response")}, name="accesslog",
        runtime=runtime)
    result = project.hlocal("up", timeout=300)
    assert result.returncode == 0, result
    return project


def access_entry(project: Project, path: str) -> dict | None:
    """The request's line as `hlocal logs access` prints it (one JSON object per line)."""
    result = project.hlocal("logs", "access", "--no-prefix")
    assert result.returncode == 0, result
    for line in result.stdout.splitlines():
        if line.startswith("{") and json.loads(line).get("path") == path:
            return json.loads(line)
    return None


def test_the_readme_fields_and_higress_fields_reach_hlocal_logs_access(stack: Project) -> None:
    port = stack.state()["gateway_port"]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/users", data=SENT.encode(), method="POST",
                                     headers={"content-type": "application/json", "user-agent": "hlocal-test"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert (reply.status, reply.read().decode()) == (201, REPLY)

    doc = wait_for(lambda: access_entry(stack, "/api/users"), 20, "the request's line in `hlocal logs access`")
    # The plugin's filter state, as the README shows it (JSON strings, escaped by the plugin).
    assert doc["request_body"] == SENT
    assert json.loads(doc["request_headers"])["content-type"] == "application/json"
    assert json.loads(doc["request_headers"])["method"] == "POST"
    assert doc["response_body"] == REPLY
    assert json.loads(doc["response_headers"])["status"] == "201"
    # Higress's own fields around them.
    assert list(doc)[0] == "ai_log" and list(doc)[-5:-4] == ["response_code_details"]
    assert (doc["method"], doc["route_name"], doc["response_code"]) == ("POST", "users", "201")
    assert (doc["user_agent"], doc["response_code_details"]) == ("hlocal-test", "via_upstream")
    assert doc["upstream_cluster"] == "outbound|80||backend"


def test_prometheus_has_higress_label_names(stack: Project) -> None:
    admin = f"http://127.0.0.1:{stack.state()['admin_port']}/stats/prometheus"
    text = urllib.request.urlopen(admin, timeout=10).read().decode()
    labels = {name for line in text.splitlines() if not line.startswith("#")
              for name in re.findall(r'(\w+)="', line.partition("}")[0])}
    # Istio's tags as Higress's bootstrap lists them; none of Envoy's defaults (envoy_cluster_name ...).
    assert {"cluster_name", "http_conn_manager_prefix", "response_code_class"} <= labels, sorted(labels)
    assert not {name for name in labels if name.startswith("envoy_")}, sorted(labels)
    assert re.search(r'^envoy_cluster_upstream_rq_total\{cluster_name="outbound\|80\|\|backend"\} [1-9]',
                     text, re.M), text


def test_a_bad_command_fails_up_before_anything_starts(make_project, plugin_wasm) -> None:
    project = make_project({"gateway": {"port": 0, "access_log_format": '{"path":"%REQ(:PATH)%","t":"%DURATON%"}'},
                            "plugins": [{"name": "p", "wasm": "plugin.wasm"}]},
                           files={"plugin.wasm": plugin_wasm("logger")}, name="badformat", runtime="native")
    result = project.hlocal("up")
    assert result.returncode == 2, result
    assert ("error: hlocal.yaml: gateway.access_log_format: %DURATON% is not an access-log command this Envoy knows"
            in result.stderr), result
    assert "hint:" in result.stderr and "Traceback" not in result.output, result
    assert project.state() is None and project.leftovers() == []
