"""The higress-flavor compose path end to end, on a STAND-IN for the Higress gateway image.

The real image cannot be pulled here. tests/docker_images.py builds a stand-in with its layout
(Debian base with bash, root user, /usr/local/bin/envoy, a bash entrypoint that refuses to run, as
Higress's pilot-agent would without a control plane) but STOCK Envoy inside. Stock Envoy refuses ABI
0.2.100 modules unadapted (flavor higress serves them as they are), so the plugin here is the
`logger` test plugin, which exports proxy_abi_version_0_2_1 and loads on stock Envoy as is.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from higress_local.config.project import load_project
from higress_local.system.readiness import ecds_stats
from higress_local.runtime.reload import reload_stack
from higress_local.runtime.files import GatewayFiles, Swap
from support import Project, docker_objects

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def standin_image(docker_images) -> str:
    from docker_images import build_base, build_higress_standin

    return build_higress_standin(build_base())


@pytest.fixture
def higress_stack(make_project, plugin_wasm, standin_image: str) -> Project:
    project = make_project(
        {"gateway": {"port": 0, "flavor": "higress", "image": standin_image},
         "plugins": [{"name": "logger", "wasm": "logger.wasm", "config": {"round": 1}}],
         "probes": [{"name": "through the stand-in", "request": {"path": "/hello"},
                     "expect": {"status": 200, "upstream": {"path": "/hello"}}}]},
        files={"logger.wasm": plugin_wasm("logger")}, name="standin", runtime="docker")
    up = project.hlocal("up", timeout=300)
    assert up.returncode == 0, up
    assert "flavor higress" in up.output or "Higress" in up.output, up
    return project


def _inspect(image: str) -> dict:
    done = subprocess.run(["docker", "image", "inspect", image], capture_output=True, text=True, timeout=60)
    return json.loads(done.stdout)[0]["Config"]


def test_the_stand_in_has_the_higress_layout(standin_image: str) -> None:
    config = _inspect(standin_image)
    assert config["User"] in ("", "root", "0")
    assert config["Entrypoint"] == ["/usr/local/bin/higress-gateway-entrypoint.sh"]
    assert "stand-in" in config["Labels"]["io.hlocal.test"]
    # Without hlocal's entrypoint override the image refuses to start.
    own = subprocess.run(["docker", "run", "--rm", standin_image], capture_output=True, text=True, timeout=120)
    assert own.returncode == 64 and "run /usr/local/bin/envoy instead" in own.stderr


def test_higress_flavor_stack_runs_end_to_end_on_the_stand_in(higress_stack: Project, standin_image: str) -> None:
    project = higress_stack
    state = project.state()
    assert state["flavor"] == "higress"
    compose = yaml.safe_load(Path(state["compose_file"]).read_text())
    gateway, backend = compose["services"]["gateway"], compose["services"]["backend"]
    assert gateway["image"] == standin_image
    assert gateway["entrypoint"] == ["/usr/local/bin/envoy"]  # the override the real image needs too
    assert gateway["healthcheck"]["test"][:2] == ["CMD", "bash"]
    # The mock is mounted from its copy in the stack folder, not from the installed package.
    mock_mount = next(v for v in backend["volumes"] if v["target"] == "/opt/hlocal_mock")
    assert Path(mock_mount["source"]).is_relative_to(project.state_dir)
    assert (Path(mock_mount["source"]) / "__main__.py").is_file()
    # No property bridge on flavor higress: the module is served as it is.
    assert "hlocal.bridge" not in (project.state_dir / "envoy.yaml").read_text()

    probe = project.hlocal("probe")
    assert probe.returncode == 0, probe
    logs = project.hlocal("logs", "gateway")
    assert logs.returncode == 0, logs
    assert "logger: configured" in logs.output and "logger: GET /hello" in logs.output

    project.config["plugins"][0]["config"] = {"round": 2}
    project.write()
    reload = project.hlocal("reload")
    assert reload.returncode == 0, reload
    assert "plugin logger: config changed, live in" in reload.output
    configured = [line for line in project.hlocal("logs", "gateway").output.splitlines() if "logger: configured" in line]
    assert '"round":2' in configured[-1].replace(" ", ""), configured

    down = project.hlocal("down", timeout=120)
    assert down.returncode == 0, down
    assert docker_objects(project.config["name"]) == []


def _swap_in_place(self: GatewayFiles, path: Path, new_text: str) -> Swap | None:
    """What Docker Desktop's file sharing can turn a host-side rename into: a plain in-place write,
    which Envoy's watched directory (IN_MOVED_TO only) never sees."""
    old = self.read_text(path)
    if old == new_text:
        return None
    with open(path, "r+", encoding="utf-8") as handle:
        handle.write(new_text)
        handle.truncate()
    swap = Swap(path=path, old_text=old, new_text=new_text)
    self.pending.append(swap)
    return swap


def test_a_lost_change_event_is_re_delivered_and_the_new_version_goes_live(higress_stack: Project,
                                                                           monkeypatch) -> None:
    project = higress_stack
    project.config["plugins"][0]["config"] = {"round": 3}
    project.write()
    monkeypatch.setattr(GatewayFiles, "swap", _swap_in_place)
    loaded = load_project(project.path / "hlocal.yaml")
    result = reload_stack(loaded, timeout=60)
    assert any("its change event was lost; re-delivered the file" in line for line in result.lines), result.lines
    state = project.state()
    live = ecds_stats(f"http://127.0.0.1:{state['admin_port']}")["hlocal.plugin.logger"]
    assert live["version_text"] == state["plugins"][0]["version"]
    assert int(live["update_attempt"]) >= 2  # the start, then the re-delivered file
