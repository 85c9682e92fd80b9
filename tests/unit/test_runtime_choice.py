"""runtime auto: the embedded Envoy whenever it runs every plugin; docker only for what needs Higress;
every later command uses the runtime the stack was started with, also after a failed `up`."""

from __future__ import annotations

from pathlib import Path

import pytest

from higress_local import runtime as runtimes
from higress_local.config.project import load_project
from higress_local.state import StackState

from .wasm_builders import plugin


def project_with(tmp_path: Path, imports, extra: str = ""):
    (tmp_path / "p.wasm").write_bytes(plugin(abi="0_2_100", imports=imports))
    (tmp_path / "hlocal.yaml").write_text(f"name: choice\nplugins: [{{name: p, wasm: p.wasm}}]\n{extra}")
    return load_project(tmp_path)


def test_auto_is_native_for_a_plugin_stock_envoy_runs(tmp_path, monkeypatch):
    # Whether an engine answers no longer matters: make it answer, to be sure it is not asked.
    monkeypatch.setattr("higress_local.system.dockerenv.engine_answers", lambda *a, **k: (True, ""))
    name, why = runtimes.choose_runtime_name(project_with(tmp_path, (("env", "proxy_log"),)), None)
    assert name == "native"
    assert why.startswith("runtime auto: native, embedded Envoy") and "\n" not in why


def test_auto_is_docker_for_a_higress_only_function_and_says_why(tmp_path):
    project = project_with(tmp_path, (("env", "proxy_get_upstream_hosts"),))
    name, why = runtimes.choose_runtime_name(project, None)
    assert name == "docker"
    assert why.startswith("runtime auto: docker (plugin p needs the Higress gateway: imports "
                          "env.proxy_get_upstream_hosts")
    assert len(why) < 200


def test_a_module_that_runs_nowhere_stays_native(tmp_path):
    name, _ = runtimes.choose_runtime_name(project_with(tmp_path, (("env", "proxy_no_such_call"),)), None)
    assert name == "native"  # the embedded runtime reports the missing import at once


@pytest.mark.parametrize("extra,expected", [("runtime: docker\n", "docker"), ("gateway: {flavor: higress}\n", "docker")])
def test_configured_or_higress_flavor(tmp_path, extra, expected):
    assert runtimes.choose_runtime_name(project_with(tmp_path, (("env", "proxy_log"),), extra), None)[0] == expected


def test_an_unbuilt_module_does_not_force_docker(tmp_path):
    (tmp_path / "hlocal.yaml").write_text("name: x\nplugins: [{name: p, wasm: p.wasm, build: {}}]\n")
    assert runtimes.choose_runtime_name(load_project(tmp_path), None)[0] == "native"


def test_the_runtime_of_a_failed_up_is_remembered(tmp_path, monkeypatch):
    project = project_with(tmp_path, (("env", "proxy_log"),), "runtime: native\n")
    runtimes.select_runtime(project, None)  # what `up` does before starting anything
    assert (project.state_dir / runtimes.LAST_RUNTIME_FILE).read_text() == "native\n"
    assert StackState.load_or_none(project.state_dir) is None  # the failed up removed its state
    # The file now says docker (or --runtime docker is given): logs/status/down still act on native.
    (tmp_path / "hlocal.yaml").write_text("name: choice\nruntime: docker\nplugins: [{name: p, wasm: p.wasm}]\n")
    assert runtimes.runtime_for_state(load_project(tmp_path), "docker").name == "native"


def test_a_garbled_record_is_ignored(tmp_path):
    project = project_with(tmp_path, (("env", "proxy_log"),), "runtime: docker\n")
    project.state_dir.mkdir(parents=True)
    (project.state_dir / runtimes.LAST_RUNTIME_FILE).write_text("../../evil\n")
    assert runtimes.last_runtime(project) is None
    assert runtimes.runtime_for_state(project, None).name == "docker"
