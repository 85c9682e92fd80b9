"""render_compose by value: services, mounts, ports on loopback, labels, healthchecks."""

from __future__ import annotations

from pathlib import Path

from higress_local import settings
from higress_local.runtime import images
from higress_local.config.project import parse_project
from higress_local.render.compose import ComposePlan, project_name, render_compose

PLAN = ComposePlan(gateway_image="gw:1", backend_image="py:1", gateway_port=10000, admin_port=19901,
                   control_port=18081, config_dir="/p/.hlocal/demo", mock_dir="/site/higress_local/mock")


def _project(doc: dict | None = None):
    doc = {"gateway": {"log_level": "warning", "wasm_log_level": "trace"}, **(doc or {})}
    return parse_project({"name": "demo", **doc}, Path("/p/hlocal.yaml"))


def test_two_services_on_one_named_network() -> None:
    doc = render_compose(_project(), PLAN)
    assert doc["name"] == "hlocal-demo" == project_name(_project())
    assert list(doc["services"]) == ["gateway", "backend"]
    assert doc["networks"] == {"hlocal": {"name": "hlocal-demo", "labels": {"io.hlocal.stack": "demo"}}}
    assert doc["services"]["backend"]["networks"] == {"hlocal": {"aliases": ["backend"]}}


def test_gateway_runs_envoy_from_the_mounted_config_directory() -> None:
    gateway = render_compose(_project(), PLAN)["services"]["gateway"]
    assert gateway["image"] == "gw:1"
    assert gateway["entrypoint"] == ["/usr/local/bin/envoy"]
    assert gateway["command"][:2] == ["-c", "/etc/hlocal/envoy.yaml"]
    assert "wasm:trace" in gateway["command"] and "warning" in gateway["command"]
    assert gateway["volumes"] == [{"type": "bind", "source": "/p/.hlocal/demo", "target": "/etc/hlocal",
                                   "read_only": True}]


def test_ports_are_published_on_loopback_only() -> None:
    services = render_compose(_project(), PLAN)["services"]
    assert services["gateway"]["ports"] == ["127.0.0.1:10000:10000", "127.0.0.1:19901:9901"]
    assert services["backend"]["ports"] == ["127.0.0.1:18081:8081"]


def test_gateway_tls_publishes_the_https_listener_on_loopback() -> None:
    from dataclasses import replace

    from higress_local.render.compose import TLS_PORT

    gateway = render_compose(_project(), replace(PLAN, tls_port=18443))["services"]["gateway"]
    assert gateway["ports"] == ["127.0.0.1:10000:10000", "127.0.0.1:19901:9901", f"127.0.0.1:18443:{TLS_PORT}"]


def test_backend_runs_the_mounted_mock_module() -> None:
    backend = render_compose(_project(), PLAN)["services"]["backend"]
    assert backend["image"] == "py:1"
    assert backend["working_dir"] == "/opt"
    assert backend["command"][:3] == ["python3", "-m", "hlocal_mock"]
    assert {"type": "bind", "source": "/site/higress_local/mock", "target": "/opt/hlocal_mock",
            "read_only": True} in backend["volumes"]
    assert "--host" in backend["command"] and "0.0.0.0" in backend["command"]


def test_labels_mark_the_stack_and_healthchecks_exist() -> None:
    services = render_compose(_project(), PLAN)["services"]
    for name, service in services.items():
        assert service["labels"]["io.hlocal.stack"] == "demo"
        assert service["labels"]["io.hlocal.service"] == name
        assert service["healthcheck"]["test"][0] == "CMD"
    assert "/ready" in services["gateway"]["healthcheck"]["test"][-1]
    assert "/__hlocal/health" in services["backend"]["healthcheck"]["test"][-1]


def test_image_choice_yaml_then_environment_then_default(monkeypatch) -> None:
    for name in (images.ENV_ENVOY, images.ENV_HIGRESS, images.ENV_BACKEND):
        monkeypatch.delenv(name, raising=False)
    plain = _project()
    assert images.gateway_image(plain, "higress") == images.HIGRESS_IMAGE
    assert images.gateway_image(plain, "envoy") == images.ENVOY_IMAGE
    assert images.backend_image(plain) == images.BACKEND_IMAGE
    monkeypatch.setenv(images.ENV_ENVOY, "local/envoy:1")
    monkeypatch.setenv(images.ENV_BACKEND, "local/py:1")
    settings.reset()  # hlocal reads HLOCAL_* once; read them again
    assert images.gateway_image(plain, "envoy") == "local/envoy:1"
    assert images.gateway_image(plain, "higress") == images.HIGRESS_IMAGE
    assert images.backend_image(plain) == "local/py:1"
    assert images.image_source(plain, "envoy", "gateway") == "$HLOCAL_ENVOY_IMAGE"
    pinned = _project({"gateway": {"image": "mine/gw:2"}, "backend": {"image": "mine/py:2"}})
    assert images.gateway_image(pinned, "envoy") == "mine/gw:2"
    assert images.backend_image(pinned) == "mine/py:2"
    assert images.image_source(pinned, "envoy", "gateway") == "gateway.image"


FIXTURE = Path(__file__).resolve().parents[2] / "compose" / "transformer-demo.compose.yaml"


def test_the_compose_fixture_is_what_the_example_renders() -> None:
    """compose/ holds the compose file examples/transformer renders (fixed ports and paths), for
    readers and as a golden file; HLOCAL_UPDATE_FIXTURES=1 rewrites it after an intended change."""
    import os

    import yaml

    from higress_local.config.project import load_project

    project = load_project(Path(__file__).resolve().parents[2] / "examples" / "transformer")
    plan = ComposePlan(gateway_image=images.HIGRESS_IMAGE, backend_image=images.BACKEND_IMAGE, gateway_port=10000,
                       admin_port=19901, control_port=18081, config_dir="/path/to/project/.hlocal/transformer-demo",
                       mock_dir="/path/to/site-packages/higress_local/mock")
    doc = render_compose(project, plan)
    doc["services"]["gateway"]["labels"]["io.hlocal.config"] = "/path/to/project/hlocal.yaml"
    doc["services"]["backend"]["labels"]["io.hlocal.config"] = "/path/to/project/hlocal.yaml"
    if os.environ.get("HLOCAL_UPDATE_FIXTURES") == "1":
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text("# Rendered by hlocal from examples/transformer (docker runtime, default images);\n"
                           "# regenerate: HLOCAL_UPDATE_FIXTURES=1 pytest tests/unit/test_render_compose.py\n"
                           + yaml.safe_dump(doc, sort_keys=False))
    assert yaml.safe_load(FIXTURE.read_text()) == doc


def test_a_mock_replica_runs_in_the_gateways_network_which_publishes_its_journal() -> None:
    from dataclasses import replace

    from higress_local.render.compose import ComposeService

    replica = ComposeService(name="svc-llm-0", image="py:1", aliases=(), command=("python3",),
                             ports=("19100:18081",), mounts_config=True, in_gateway_network=True)
    mock = ComposeService(name="svc-db", image="py:1", aliases=("db",), ports=("19200:8081",))
    services = render_compose(_project(), replace(PLAN, extra=(replica, mock)))["services"]
    assert services["svc-llm-0"]["network_mode"] == "service:gateway"
    assert "networks" not in services["svc-llm-0"] and "ports" not in services["svc-llm-0"]
    assert services["svc-llm-0"]["depends_on"] == ["gateway"]
    assert "127.0.0.1:19100:18081" in services["gateway"]["ports"]
    assert "127.0.0.1:19200:8081" not in services["gateway"]["ports"]
    assert services["gateway"]["depends_on"] == ["backend", "svc-db"]  # not the replicas: they start after it


def test_check_says_what_capture_does_unless_it_is_off() -> None:
    from higress_local.wasm.plugins import check_project

    def notes(project) -> list[str]:
        return [n for n in check_project(project, "higress").notes if n.startswith("gateway.inspect")]

    assert notes(_project({"gateway": {"inspect": False}})) == []
    [note] = notes(_project())
    assert "not in Higress's chain" in note and "on by default on the native runtime" in note and "1 in 16" in note
    assert "docker" in note and "time zone" in note
    assert notes(_project({"gateway": {"inspect": True}})) == [note]
