"""`hlocal export higress`: WasmPlugin / McpBridge / ServiceEntry documents, by value and against the CRD shapes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from higress_local import __version__
from higress_local.config.project import parse_project
from higress_local.errors import ConfigError
from higress_local.project.export import export_higress

FILE = Path("/x/hlocal.yaml")
META = {
    "namespace": "higress-system",
    "labels": {"hlocal.io/project": "demo"},
    "annotations": {"hlocal.io/exported-by": f"hlocal {__version__} from hlocal.yaml"},
}


def project(plugins: list[dict] | None = None, services: list[dict] | None = None, **extra: Any):
    data: dict[str, Any] = {"name": "demo", "plugins": plugins or [], **extra}
    if services is not None:
        data["services"] = services
    return parse_project(data, FILE)


def docs(result, kind: str) -> list[dict]:
    return [resource for _, resource in result.documents if resource["kind"] == kind]


RULED = {
    "name": "auth",
    "wasm": "auth.wasm",
    "phase": "authn",
    "priority": 300,
    "fail_open": True,
    "config": {"allow": ["alice"], "header": {"name": "x-user"}},
    "rules": [
        {"match_route": ["api", "team-b/orders"], "config": {"allow": ["bob"]}},
        {"match_domain": ["*.example.com", "shop.example.org"], "config": {"allow": []}},
        {"match_service": ["billing.default.svc.cluster.local", "users.dns:80"], "config": {"header": {"name": "x-b"}}},
    ],
}


# ---- the WasmPlugin ------------------------------------------------------------------------------


def test_wasm_plugin_for_global_config_and_three_rules_equals_the_expected_resource():
    result = export_higress(project([RULED]), urls={"auth": "oci://registry.example.com/auth:1.0.0"})

    assert result.documents[0] == ("wasmplugin-auth.yaml", {
        "apiVersion": "extensions.higress.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": "auth", **META},
        "spec": {
            "url": "oci://registry.example.com/auth:1.0.0",
            "phase": "AUTHN",
            "priority": 300,
            "failStrategy": "FAIL_OPEN",
            "defaultConfigDisable": False,
            "defaultConfig": {"allow": ["alice"], "header": {"name": "x-user"}},
            "matchRules": [
                {"ingress": ["api", "team-b/orders"], "config": {"allow": ["bob"]}},
                {"domain": ["*.example.com", "shop.example.org"], "config": {"allow": []}},
                {"service": ["billing.default.svc.cluster.local", "users.dns:80"],
                 "config": {"header": {"name": "x-b"}}},
            ],
        },
    })
    assert result.warnings == []
    assert [n for n in result.notes if "route" in n] == [
        "route 'api' is matched as the Higress route of Ingress 'api' in namespace higress-system; "
        "for an Ingress in another namespace name it NAMESPACE/api"]


def controller_plugin_config(spec: dict) -> dict:
    """What the Higress controller hands the plugin for a WasmPlugin spec, modelled on
    alibaba/higress pkg/ingress/config/ingress_config.go convertIstioWasmPlugin."""
    config = {} if spec.get("defaultConfigDisable") else dict(spec.get("defaultConfig") or {})
    rules = []
    for rule in spec.get("matchRules", []):
        if rule.get("configDisable"):
            continue
        item = dict(rule.get("config") or {})
        for field, key in (("ingress", "_match_route_"), ("service", "_match_service_"), ("domain", "_match_domain_")):
            if rule.get(field):
                item[key] = list(rule[field])
        rules.append(item)
    if rules:
        config["_rules_"] = rules
    return config


@pytest.mark.parametrize("plugin", [
    RULED,
    {"name": "rules-only", "wasm": "p.wasm", "rules": [{"match_route": ["api"], "config": {"on": True}},
                                                       {"match_domain": ["a.com"], "match_service": ["s.dns"]}]},
    {"name": "global-only", "wasm": "p.wasm", "config": {"k": [1, 2]}},
    {"name": "prefix-too", "wasm": "p.wasm", "config": {"k": 1},
     "rules": [{"match_route": ["a"], "match_route_prefix": ["a-"], "config": {"k": 2}}]},
])
def test_higress_hands_the_plugin_the_same_json_as_hlocal_did_locally(plugin):
    parsed = project([plugin])
    spec = docs(export_higress(parsed, default_url="oci://r/{name}:1"), "WasmPlugin")[0]["spec"]

    local = parsed.plugins[0].configuration()
    for rule in local.get("_rules_", []):
        rule.pop("_match_route_prefix_", None)  # ignored by wasm-go when the rule matches anything else
    assert controller_plugin_config(spec) == local


def test_without_a_url_the_spec_has_a_placeholder_and_a_warning():
    result = export_higress(project([{"name": "headers", "wasm": "h.wasm"}]))

    spec = docs(result, "WasmPlugin")[0]["spec"]
    assert spec["url"] == "oci://REGISTRY/headers:VERSION"
    assert spec["phase"] == "UNSPECIFIED_PHASE" and spec["priority"] == 0 and spec["failStrategy"] == "FAIL_CLOSE"
    assert spec["defaultConfig"] == {} and spec["defaultConfigDisable"] is False and "matchRules" not in spec
    assert len(result.warnings) == 1
    assert "'headers'" in result.warnings[0] and "oci://REGISTRY/headers:VERSION" in result.warnings[0]


def test_urls_take_precedence_over_the_default_url_which_may_name_the_plugin():
    plugins = [{"name": "a", "wasm": "a.wasm"}, {"name": "b", "wasm": "b.wasm"}]
    result = export_higress(project(plugins), urls={"a": "https://cdn.example.com/a.wasm"},
                            default_url="oci://reg.example.com/plugins/{name}:2.0.0")

    assert [d["spec"]["url"] for d in docs(result, "WasmPlugin")] == [
        "https://cdn.example.com/a.wasm", "oci://reg.example.com/plugins/b:2.0.0"]
    assert result.warnings == []


def test_a_url_for_an_unknown_plugin_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown plugin") as info:
        export_higress(project([{"name": "a", "wasm": "a.wasm"}]), urls={"b": "oci://r/b:1"})
    assert "plugins: a" in info.value.hint


def test_an_invalid_namespace_is_a_config_error():
    with pytest.raises(ConfigError, match="Higress_System"):
        export_higress(project([]), namespace="Higress_System")


def test_a_prefix_only_rule_is_skipped_with_a_warning_naming_it():
    plugin = {"name": "p", "wasm": "p.wasm", "config": {"k": 0}, "rules": [
        {"match_route": ["api"], "config": {"k": 1}},
        {"match_route_prefix": ["ai-route-"], "config": {"k": 2}},
        {"match_domain": ["a.com"], "config": {"k": 3}},
    ]}
    result = export_higress(project([plugin]), default_url="oci://r/{name}:1")

    rules = docs(result, "WasmPlugin")[0]["spec"]["matchRules"]
    assert rules == [{"ingress": ["api"], "config": {"k": 1}}, {"domain": ["a.com"], "config": {"k": 3}}]
    assert len(result.warnings) == 1
    assert "plugin 'p' rules[1]" in result.warnings[0] and "match_route_prefix" in result.warnings[0]


def test_a_plugin_without_global_config_runs_only_where_rules_match():
    plugin = {"name": "p", "wasm": "p.wasm", "rules": [{"match_route": ["api"], "config": {"k": 1}}]}
    spec = docs(export_higress(project([plugin]), default_url="u"), "WasmPlugin")[0]["spec"]
    assert spec["defaultConfigDisable"] is True


def test_a_plugin_left_with_nothing_to_install_is_warned_about():
    plugin = {"name": "p", "wasm": "p.wasm", "rules": [{"match_route_prefix": ["x-"], "config": {"k": 1}}]}
    result = export_higress(project([plugin]), default_url="u")

    spec = docs(result, "WasmPlugin")[0]["spec"]
    assert spec["defaultConfigDisable"] is True and "matchRules" not in spec
    assert any("Higress will not install it" in w for w in result.warnings)


def test_plugin_names_become_valid_kubernetes_names():
    result = export_higress(project([{"name": "my_plugin", "wasm": "p.wasm"}]), default_url="u")
    name, resource = result.documents[0]
    assert (name, resource["metadata"]["name"]) == ("wasmplugin-my-plugin.yaml", "my-plugin")
    assert any("'my_plugin'" in n and "'my-plugin'" in n for n in result.notes)


# ---- services ------------------------------------------------------------------------------------


def higress_cluster(registry: dict, service: str | None = None, instance_port: int | None = None) -> str:
    """The cluster Higress builds for a registry's service, modelled on alibaba/higress registry/*/watcher.go."""
    kind = registry["type"]
    if kind in ("static", "dns"):  # registry/direct: one ServiceEntry NAME.TYPE on the registry's port
        return f"outbound|{registry['port']}||{registry['name']}.{kind}"
    if kind == "consul":  # registry/consul: SVC.DC.consul, port of the registered instance
        host = f"{service}.{registry['consulDatacenter']}.consul".replace("_", "-")
        return f"outbound|{instance_port}||{host}"
    assert kind in ("nacos", "nacos2")  # registry/nacos/v2: SVC + GROUP.NS.nacos with _ -> -
    namespace = registry.get("nacosNamespace") or registry.get("nacosNamespaceId") or "public"
    clusters = [f"outbound|{instance_port}||{service}." + f"{group}.{namespace}.nacos".replace("_", "-")
                for group in registry["nacosGroups"]]
    return clusters  # type: ignore[return-value]


SERVICES = [
    {"name": "ip", "kind": "static", "host": "legacy", "port": 80, "url": "http://10.0.0.7:8080"},
    {"name": "web", "kind": "dns", "host": "httpbin", "port": 443, "domain": "httpbin.org"},
    {"name": "cat", "kind": "consul", "host": "catalog", "port": 9000, "datacenter": "dc1"},
    {"name": "pay", "kind": "nacos", "host": "payment", "port": 8080, "namespace": "prod"},
    {"name": "inv", "kind": "nacos", "host": "inventory", "port": 8081, "namespace": "prod", "group": "shop"},
]


def test_registry_services_map_to_one_default_mcpbridge_yielding_the_same_clusters():
    parsed = project(services=SERVICES)
    result = export_higress(parsed)

    [bridge] = docs(result, "McpBridge")
    assert bridge["apiVersion"] == "networking.higress.io/v1"
    assert bridge["metadata"] == {"name": "default", **META}
    registries = bridge["spec"]["registries"]
    assert registries == [
        {"type": "static", "name": "legacy", "domain": "10.0.0.7:8080", "port": 80},
        {"type": "dns", "name": "httpbin", "domain": "httpbin.org", "port": 443},
        {"type": "consul", "name": "consul-dc1", "domain": "SET-ME-CONSUL-ADDRESS", "port": 8500,
         "consulDatacenter": "dc1"},
        {"type": "nacos2", "name": "nacos-prod", "domain": "SET-ME-NACOS-ADDRESS", "port": 8848,
         "nacosNamespaceId": "prod", "nacosGroups": ["DEFAULT_GROUP", "shop"]},
    ]
    static, dns, consul, nacos = registries
    svc = {s.name: s for s in parsed.services}
    assert higress_cluster(static) == svc["ip"].cluster_name()
    assert higress_cluster(dns) == svc["web"].cluster_name()
    assert higress_cluster(consul, "catalog", 9000) == svc["cat"].cluster_name()
    assert svc["pay"].cluster_name() in higress_cluster(nacos, "payment", 8080)
    assert svc["inv"].cluster_name() in higress_cluster(nacos, "inventory", 8081)
    assert result.documents[-1][0] == "mcpbridge-default.yaml"
    warnings = "\n".join(result.warnings)
    assert "consul-dc1: set domain and port" in warnings and "nacos-prod: set domain and port" in warnings
    assert "merge these registries" in warnings


def test_placeholders_and_warnings_when_addresses_are_unknown():
    services = [{"name": "s", "kind": "static", "host": "legacy", "port": 80},  # a mock on loopback
                {"name": "d", "kind": "dns", "host": "api", "port": 80},
                {"name": "e", "kind": "dns", "host": "local", "port": 80, "domain": "backend"}]
    result = export_higress(project(services=services))

    static, dns, bad = docs(result, "McpBridge")[0]["spec"]["registries"]
    assert static["domain"] == "SET-ME-IP:PORT" and dns["domain"] == "SET-ME.example.com"
    assert bad["domain"] == "backend"
    warnings = "\n".join(result.warnings)
    assert "services[0] 's'" in warnings and "services[1] 'd'" in warnings
    assert "rejects dns domain 'backend'" in warnings


def test_two_services_cannot_share_one_direct_registry():
    services = [{"name": "a", "kind": "dns", "host": "api", "port": 80, "domain": "a.example.com"},
                {"name": "b", "kind": "dns", "host": "api", "port": 8080, "domain": "a.example.com"}]
    result = export_higress(project(services=services))
    assert len(docs(result, "McpBridge")[0]["spec"]["registries"]) == 1
    assert any("services[1] 'b'" in w and "already exported" in w for w in result.warnings)


def test_k8s_services_need_no_resource_only_a_note():
    services = [{"name": "users", "kind": "k8s", "host": "users", "port": 8080, "namespace": "team"},
                {"name": "v2", "kind": "k8s", "host": "orders", "port": 80, "version": "v2"}]
    result = export_higress(project(services=services))

    assert result.documents == []
    assert any("Kubernetes Service users in namespace team with port 8080" in n for n in result.notes)
    assert any("services[1] 'v2'" in w and "subset" in w for w in result.warnings)


def test_an_external_fqdn_becomes_an_istio_service_entry_with_a_warning():
    parsed = project(services=[{"name": "openai", "kind": "fqdn", "host": "api.openai.com", "port": 443}])
    result = export_higress(parsed)

    assert result.documents == [("serviceentry-openai.yaml", {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "ServiceEntry",
        "metadata": {"name": "openai", **META},
        "spec": {"hosts": ["api.openai.com"], "ports": [{"number": 443, "name": "http-443", "protocol": "HTTP"}],
                 "location": "MESH_EXTERNAL", "resolution": "DNS"},
    })]
    # Istio names the cluster of a ServiceEntry outbound|PORT||HOST: the name the plugin asks for.
    spec = result.documents[0][1]["spec"]
    assert f"outbound|{spec['ports'][0]['number']}||{spec['hosts'][0]}" == parsed.services[0].cluster_name()
    assert len(result.warnings) == 1 and "global.enableIstioAPI=true" in result.warnings[0]


def test_fqdn_and_redis_names_of_registry_services_map_to_those_registries():
    services = [
        {"name": "cache", "kind": "redis", "host": "redis.dns", "port": 6379},
        {"name": "kv", "kind": "redis", "host": "kv.static", "port": 6379},
        {"name": "svc", "kind": "fqdn", "host": "users.team.svc.cluster.local", "port": 80},
        {"name": "cons", "kind": "fqdn", "host": "catalog.dc1.consul", "port": 9000},
        {"name": "external", "kind": "redis", "host": "redis.example.com", "port": 6379},
    ]
    parsed = project(services=services)
    result = export_higress(parsed)

    registries = docs(result, "McpBridge")[0]["spec"]["registries"]
    assert [(r["type"], r["name"], r["port"]) for r in registries] == [
        ("dns", "redis", 6379), ("static", "kv", 6379), ("consul", "consul-dc1", 8500)]
    assert higress_cluster(registries[0]) == parsed.services[0].cluster_name()
    assert higress_cluster(registries[1]) == parsed.services[1].cluster_name()
    assert higress_cluster(registries[2], "catalog", 9000) == parsed.services[3].cluster_name()
    assert any("Kubernetes Service users in namespace team" in n for n in result.notes)
    [entry] = docs(result, "ServiceEntry")
    assert entry["spec"]["ports"] == [{"number": 6379, "name": "tcp-6379", "protocol": "TCP"}]


def test_a_registry_like_name_higress_cannot_produce_stays_an_external_fqdn():
    # Higress writes Nacos groups with - for _, so no registry yields ...DEFAULT_GROUP...
    parsed = project(services=[{"name": "n", "kind": "fqdn", "host": "pay.DEFAULT_GROUP.prod.nacos", "port": 80}])
    result = export_higress(parsed)
    assert docs(result, "McpBridge") == []
    assert [d["spec"]["hosts"] for d in docs(result, "ServiceEntry")] == [["pay.DEFAULT_GROUP.prod.nacos"]]


# ---- files, YAML and the CRD shapes --------------------------------------------------------------


FULL = dict(
    plugins=[RULED, {"name": "logger", "wasm": "l.wasm", "phase": "stats", "config": {"level": "info"}}],
    services=SERVICES + [{"name": "openai", "kind": "fqdn", "host": "api.openai.com", "port": 443},
                         {"name": "users", "kind": "k8s", "host": "users", "port": 8080}],
)


def test_write_puts_one_file_per_resource_that_loads_back_to_the_same_dict(tmp_path):
    result = export_higress(project(**FULL), default_url="oci://r/{name}:1")
    paths = result.write(tmp_path / "out")

    assert [p.name for p in paths] == ["wasmplugin-auth.yaml", "wasmplugin-logger.yaml", "mcpbridge-default.yaml",
                                      "serviceentry-openai.yaml"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in paths)
    for path, (_, resource) in zip(paths, result.documents):
        assert list(yaml.safe_load_all(path.read_text(encoding="utf-8"))) == [resource]
    assert list(yaml.safe_load_all(result.to_yaml())) == [resource for _, resource in result.documents]


def test_export_is_deterministic():
    first = export_higress(project(**FULL), default_url="oci://r/{name}:1")
    second = export_higress(project(**FULL), default_url="oci://r/{name}:1")
    assert first.to_yaml() == second.to_yaml()
    assert (first.warnings, first.notes) == (second.warnings, second.notes)


# Required fields and types, from alibaba/higress helm/core/crds/customresourcedefinitions.gen.yaml
# (WasmPlugin, McpBridge) and api/networking/v1/mcp_bridge.proto (REQUIRED registry fields), and
# Istio's ServiceEntry (hosts required; ports number/name/protocol; location/resolution enums).
STRINGS = {"type": "array", "items": {"type": "string"}}
OBJECT = {"type": "object", "open": True}
METADATA = {"type": "object", "required": ["name", "namespace"], "properties": {
    "name": {"type": "string", "pattern": r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"},
    "namespace": {"type": "string", "pattern": r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"},
    "labels": {"type": "object", "values": {"type": "string"}},
    "annotations": {"type": "object", "values": {"type": "string"}},
}}
SCHEMAS = {
    ("extensions.higress.io/v1alpha1", "WasmPlugin"): {"type": "object", "properties": {
        "url": {"type": "string"}, "sha256": {"type": "string"},
        "imagePullPolicy": {"type": "string", "enum": ["UNSPECIFIED_POLICY", "IfNotPresent", "Always"]},
        "imagePullSecret": {"type": "string"},
        "phase": {"type": "string", "enum": ["UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"]},
        "priority": {"type": "integer"},
        "failStrategy": {"type": "string", "enum": ["FAIL_CLOSE", "FAIL_OPEN"]},
        "defaultConfig": OBJECT, "defaultConfigDisable": {"type": "boolean"},
        "matchRules": {"type": "array", "items": {"type": "object", "properties": {
            "ingress": STRINGS, "domain": STRINGS, "service": STRINGS,
            "config": OBJECT, "configDisable": {"type": "boolean"}}}},
    }},
    ("networking.higress.io/v1", "McpBridge"): {"type": "object", "required": ["registries"], "properties": {
        "registries": {"type": "array", "items": {"type": "object", "required": ["type", "domain", "port"],
                                                  "properties": {
            "type": {"type": "string", "enum": ["static", "dns", "consul", "nacos", "nacos2", "nacos3",
                                                "zookeeper", "eureka"]},
            "name": {"type": "string"}, "domain": {"type": "string"}, "port": {"type": "integer"},
            "consulDatacenter": {"type": "string"}, "nacosNamespaceId": {"type": "string"},
            "nacosGroups": STRINGS}}}}},
    ("networking.istio.io/v1alpha3", "ServiceEntry"): {"type": "object", "required": ["hosts"], "properties": {
        "hosts": STRINGS,
        "ports": {"type": "array", "items": {"type": "object", "required": ["number", "name"], "properties": {
            "number": {"type": "integer"}, "name": {"type": "string"}, "protocol": {"type": "string"}}}},
        "location": {"type": "string", "enum": ["MESH_EXTERNAL", "MESH_INTERNAL"]},
        "resolution": {"type": "string", "enum": ["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]}}},
}
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int}


def shape_errors(value: Any, schema: dict, path: str) -> list[str]:
    """Check value against a small schema: type, enum, pattern, required and known properties."""
    import re

    expected = TYPES[schema["type"]]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return [f"{path}: {type(value).__name__}, not {schema['type']}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and not re.fullmatch(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if expected is list:
        for index, item in enumerate(value):
            errors += shape_errors(item, schema["items"], f"{path}[{index}]")
    if expected is dict and not schema.get("open"):
        errors += [f"{path}.{key}: required" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            sub = schema["properties"].get(key) if "properties" in schema else schema.get("values")
            if sub is None:  # a structural CRD schema would silently prune it
                errors.append(f"{path}.{key}: unknown field")
            else:
                errors += shape_errors(item, sub, f"{path}.{key}")
    return errors


def resource_errors(resource: dict) -> list[str]:
    key = (resource.get("apiVersion"), resource.get("kind"))
    if key not in SCHEMAS:
        return [f"unknown resource {key}"]
    errors = [f"{k}: unknown top-level field" for k in resource if k not in ("apiVersion", "kind", "metadata", "spec")]
    errors += shape_errors(resource.get("metadata"), METADATA, "metadata")
    return errors + shape_errors(resource.get("spec"), SCHEMAS[key], "spec")


def test_every_exported_resource_has_the_shape_its_crd_declares():
    result = export_higress(project(**FULL))
    assert {r["kind"] for _, r in result.documents} == {"WasmPlugin", "McpBridge", "ServiceEntry"}
    for name, resource in result.documents:
        assert resource_errors(resource) == [], name


@pytest.mark.parametrize("mutate, error", [
    (lambda r: r["spec"].update(phase="authn"), "spec.phase: 'authn' not in"),
    (lambda r: r["spec"].update(priority="1"), "spec.priority: str, not integer"),
    (lambda r: r["spec"]["matchRules"][0].update(ingress="api"), "spec.matchRules[0].ingress: str, not array"),
    (lambda r: r["spec"].update(match_rules=[]), "spec.match_rules: unknown field"),
    (lambda r: r["metadata"].pop("namespace"), "metadata.namespace: required"),
])
def test_the_shape_check_catches_what_kubernetes_would_reject_or_prune(mutate, error):
    resource = docs(export_higress(project([RULED]), default_url="u"), "WasmPlugin")[0]
    mutate(resource)
    assert any(e.startswith(error) for e in resource_errors(resource)), resource_errors(resource)


def test_cli_export_writes_files_and_rejects_a_malformed_url(tmp_path):
    from click.testing import CliRunner

    from higress_local.cli.main import main

    (tmp_path / "hlocal.yaml").write_text(
        "name: ex\nplugins:\n  - name: headers\n    wasm: h.wasm\n    config: {a: 1}\n"
        "    rules: [{match_domain: ['*.example.com'], config: {a: 2}}]\n")
    out = tmp_path / "out"
    done = CliRunner().invoke(main, ["-f", str(tmp_path), "export", "higress", "--url", "headers=oci://r/h:1",
                                     "--out", str(out)])
    assert done.exit_code == 0, done.output
    (written,) = [yaml.safe_load(p.read_text()) for p in out.iterdir()]
    assert written["kind"] == "WasmPlugin" and written["spec"]["url"] == "oci://r/h:1"
    assert written["spec"]["matchRules"] == [{"domain": ["*.example.com"], "config": {"a": 2}}]
    bad = CliRunner().invoke(main, ["-f", str(tmp_path), "export", "higress", "--url", "headers"])
    assert bad.exit_code == 2 and "expected PLUGIN=URL" in bad.output


# ---- the real CRD schemas (tests/data/higress-crds.yaml, from alibaba/higress) -------------------

CRDS = Path(__file__).resolve().parents[1] / "data" / "higress-crds.yaml"


def crd_schema(kind: str) -> dict:
    """The CRD's openAPIV3Schema as JSON Schema, with what the API server does that jsonschema does not:
    `nullable`, and pruning (an object field the schema does not declare is dropped silently; here it
    is an error, since a dropped field is a setting the cluster never sees)."""
    for crd in yaml.safe_load_all(CRDS.read_text(encoding="utf-8")):
        if crd["spec"]["names"]["kind"] == kind:
            [version] = crd["spec"]["versions"]
            schema = version["schema"]["openAPIV3Schema"]
            break
    else:
        raise AssertionError(f"no CRD for {kind} in {CRDS}")

    def convert(node: Any) -> Any:
        if isinstance(node, list):
            return [convert(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: convert(value) for key, value in node.items()}
        if out.pop("nullable", False):
            out["type"] = [out["type"], "null"]
        if "properties" in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
        return out

    schema = convert(schema)
    # Every resource also has the fields the API server declares for all kinds.
    schema["properties"].update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                 "metadata": {"type": "object"}})
    return schema


def crd_errors(resource: dict) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is in the dev extra: pip install -e '.[dev]'")
    validator = jsonschema.Draft7Validator(crd_schema(resource["kind"]))
    return sorted(f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
                  for e in validator.iter_errors(resource))


def test_the_crd_test_data_names_its_source():
    header = CRDS.read_text(encoding="utf-8").split("apiVersion:", 1)[0]
    assert "alibaba/higress" in header and "helm/core/crds/customresourcedefinitions.gen.yaml" in header
    assert "1416d47c3e025b16f9fcf5ed3513637593087c17" in header


def test_exported_wasmplugins_and_mcpbridge_validate_against_higress_crds():
    pushed = {"logger": _pushed("logger", "sha256:" + "ab" * 32)}
    result = export_higress(project(**FULL), pushed=pushed)
    checked = [r for _, r in result.documents if r["kind"] in ("WasmPlugin", "McpBridge")]
    assert [r["kind"] for r in checked] == ["WasmPlugin", "WasmPlugin", "McpBridge"]
    for resource in checked:
        assert crd_errors(resource) == [], resource["metadata"]["name"]
    assert checked[1]["spec"]["url"] == "oci://127.0.0.1:5000/logger@sha256:" + "ab" * 32


@pytest.mark.parametrize("mutate, error", [
    (lambda r: r["spec"].update(phase="authn"), "spec.phase: 'authn' is not one of"),
    (lambda r: r["spec"].update(priority="1"), "spec.priority: '1' is not of type"),
    (lambda r: r["spec"].update(failStrategy="FAIL_SOMETIMES"), "spec.failStrategy: 'FAIL_SOMETIMES' is not one of"),
    (lambda r: r["spec"]["matchRules"][0].update(ingress="api"), "spec.matchRules.0.ingress: 'api' is not of type"),
    (lambda r: r["spec"].update(match_rules=[]), "spec: Additional properties are not allowed ('match_rules'"),
    (lambda r: r["spec"]["matchRules"][1].update(domains=["x"]),
     "spec.matchRules.1: Additional properties are not allowed ('domains'"),
    (lambda r: r.update(specs={}), "<root>: Additional properties are not allowed ('specs'"),
])
def test_the_crd_schema_catches_what_kubernetes_would_reject_or_prune(mutate, error):
    resource = docs(export_higress(project([RULED]), default_url="u", pushed={}), "WasmPlugin")[0]
    assert crd_errors(resource) == []
    mutate(resource)
    assert any(e.startswith(error) for e in crd_errors(resource)), crd_errors(resource)


def test_plugin_config_keys_are_free_form_under_the_crd():
    # defaultConfig and matchRules[].config preserve unknown fields: any plugin config passes.
    resource = docs(export_higress(project([RULED]), default_url="u", pushed={}), "WasmPlugin")[0]
    resource["spec"]["defaultConfig"]["anything_at_all"] = {"nested": [1, "two"]}
    resource["spec"]["matchRules"][0]["config"]["x"] = None
    assert crd_errors(resource) == []


# ---- the image `hlocal push` pushed ---------------------------------------------------------------


def _pushed(plugin: str, digest: str, wasm_sha256: str = "", registry: str = "127.0.0.1:5000"):
    from higress_local.project.push import PushedImage

    return PushedImage(plugin=plugin, reference=f"{registry}/{plugin}:1.0.0", digest=digest,
                       url=f"oci://{registry}/{plugin}@{digest}", wasm_sha256=wasm_sha256, layers=[],
                       pushed_at="2026-12-02T08:00:00Z")


def _project_on_disk(tmp_path: Path, wasm: bytes = b"\0asm\1\0\0\0"):
    (tmp_path / "auth.wasm").write_bytes(wasm)
    (tmp_path / "hlocal.yaml").write_text("name: demo\nplugins:\n  - {name: auth, wasm: auth.wasm, config: {a: 1}}\n"
                                          "  - {name: other, wasm: other.wasm}\n")
    from higress_local.config.project import load_project

    return load_project(str(tmp_path / "hlocal.yaml"))


def test_a_pushed_plugin_gets_its_digest_url_and_url_beats_it_and_it_beats_default_url(tmp_path):
    import hashlib

    from higress_local.project.push import record_push

    parsed = _project_on_disk(tmp_path)
    digest = "sha256:" + "cd" * 32
    record_push(parsed, _pushed("auth", digest, hashlib.sha256(b"\0asm\1\0\0\0").hexdigest()))

    result = export_higress(parsed, default_url="oci://r/{name}:2")  # reads .hlocal/demo/pushed.json
    urls = {r["metadata"]["name"]: r["spec"]["url"] for _, r in result.documents}
    assert urls == {"auth": f"oci://127.0.0.1:5000/auth@{digest}", "other": "oci://r/other:2"}
    assert not any("changed since" in w for w in result.warnings)
    assert any("pushed to 127.0.0.1:5000/auth:1.0.0" in n for n in result.notes)
    assert any("registry 127.0.0.1:5000 is on this machine" in n for n in result.notes)

    explicit = export_higress(parsed, urls={"auth": "oci://elsewhere/auth:9"})
    assert docs(explicit, "WasmPlugin")[0]["spec"]["url"] == "oci://elsewhere/auth:9"


def test_a_module_changed_since_the_push_is_warned_about(tmp_path):
    parsed = _project_on_disk(tmp_path, wasm=b"\0asm\1\0\0\0rebuilt")
    result = export_higress(parsed, pushed={"auth": _pushed("auth", "sha256:" + "ef" * 32, "0" * 64,
                                                            registry="registry.example.com")})
    assert docs(result, "WasmPlugin")[0]["spec"]["url"].endswith("@sha256:" + "ef" * 32)
    [warning] = [w for w in result.warnings if "changed since" in w]
    assert "auth.wasm changed since it was pushed to registry.example.com/auth:1.0.0" in warning
    assert "hlocal push auth oci://registry.example.com/auth:1.0.0" in warning
    assert not any("on this machine" in n for n in result.notes)


def test_cli_export_uses_the_pushed_digest_and_refuses_a_corrupt_record(tmp_path):
    from click.testing import CliRunner

    from higress_local.cli.main import main
    from higress_local.project.push import PUSHED_FILE, record_push

    parsed = _project_on_disk(tmp_path)
    record_push(parsed, _pushed("auth", "sha256:" + "12" * 32))
    done = CliRunner().invoke(main, ["-f", str(tmp_path), "export", "higress"])
    assert done.exit_code == 0, done.output
    urls = [d["spec"]["url"] for d in yaml.safe_load_all(done.stdout) if d]
    assert urls == ["oci://127.0.0.1:5000/auth@sha256:" + "12" * 32, "oci://REGISTRY/other:VERSION"]

    (parsed.state_dir / PUSHED_FILE).write_text("{not json")
    bad = CliRunner().invoke(main, ["-f", str(tmp_path), "export", "higress"])
    assert bad.exit_code == 3 and "is not a record of hlocal push" in bad.output


def test_a_static_service_with_urls_exports_every_endpoint_as_the_registry_domain():
    urls = ["http://10.0.0.7:8080", {"url": "http://10.0.0.8:8080", "metrics": "m 1\n"}]
    parsed = project(services=[{"name": "llm", "kind": "static", "host": "llm", "port": 80, "urls": urls}])
    [bridge] = docs(export_higress(parsed), "McpBridge")
    [static] = bridge["spec"]["registries"]
    assert static["domain"] == "10.0.0.7:8080,10.0.0.8:8080"
    assert higress_cluster(static) == parsed.services[0].cluster_name()
