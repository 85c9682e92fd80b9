"""The GitHub workflow for the real Higress image: it lints clean (actionlint), has the steps issue 12 asks
for, and its inline scripts read hlocal's rendered compose file as hlocal really writes it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import actionlint

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "higress-image.yml"
EXAMPLE = ROOT / "examples" / "transformer"
HEREDOC = re.compile(r"<<'EOF'\n(.*?)\nEOF\n", re.DOTALL)


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)


def steps() -> list[dict]:
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return doc["jobs"]["gateway"]["steps"]


def step(name: str) -> dict:
    [found] = [s for s in steps() if s.get("name") == name]
    return found


def test_the_higress_image_workflow_lints_clean():
    done = lint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_actionlint_really_checks(tmp_path):
    # The runner context does not exist at job level, and `runs-on` is misspelt: both must be reported.
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: push\njobs:\n  j:\n    run-on: ubuntu-latest\n    env:\n      X: ${{ runner.temp }}\n"
                      "    steps:\n      - run: echo hi\n")
    done = lint(broken)
    assert done.returncode != 0
    assert "run-on" in done.stdout and "runner" in done.stdout


def test_it_runs_on_x86_and_arm_with_docker_tests_required():
    doc = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    job = doc["jobs"]["gateway"]
    assert job["strategy"]["matrix"]["runner"] == ["ubuntu-latest", "ubuntu-24.04-arm"]
    assert job["runs-on"] == "${{ matrix.runner }}"
    assert job["env"]["HLOCAL_REQUIRE_DOCKER"] == "1"


def test_the_image_is_read_at_run_time_never_pinned_in_the_workflow():
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "higress/gateway:" not in text and "cr.aliyuncs.com" not in text
    assert 'docker pull "$IMAGE"' in step("Pull the gateway image")["run"]
    inspect = step("Inspect platforms, user and entrypoint")["run"]
    for needle in ("docker buildx imagetools inspect", "docker image inspect", ".Config.User", ".Config.Entrypoint",
                   "--entrypoint /usr/local/bin/envoy"):
        assert needle in inspect


def test_both_stacks_go_up_probe_reload_log_and_down_in_that_order():
    names = [s.get("name", "") for s in steps()]
    for stack in ("transformer", "redis"):
        ours = [n.split(": ", 1)[1].split()[0] for n in names if n.startswith(f"{stack}: ")]
        assert ours == ["up", "probe", "reload", "logs", "down"], ours
        assert step(f"{stack}: logs").get("if") == "always()" and step(f"{stack}: down").get("if") == "always()"
    assert "up --runtime docker" in step("transformer: up")["run"]
    assert "flavor: higress" in step("Write the Redis project")["run"]
    assert "kind: redis" in step("Write the Redis project")["run"]
    assert "--mode validate" in step("envoy --mode validate on the rendered config, inside the image")["run"]


def test_the_inline_scripts_read_the_compose_file_hlocal_renders(tmp_path, transformer_wasm):
    project = tmp_path / "project"
    (project / "build").mkdir(parents=True)
    shutil.copyfile(EXAMPLE / "hlocal.yaml", project / "hlocal.yaml")
    shutil.copyfile(transformer_wasm, project / "build" / "transformer.wasm")
    out = tmp_path / "rendered"
    render = subprocess.run([sys.executable, "-m", "higress_local", "-f", str(project), "render", "--runtime", "docker",
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert render.returncode == 0, render.stderr
    compose = yaml.safe_load((out / "compose.yaml").read_text())

    [image_script] = HEREDOC.findall(step("Pinned gateway image")["run"] + "\n")
    image = subprocess.run([sys.executable, "-", str(out / "compose.yaml")], input=image_script, capture_output=True,
                           text=True, timeout=60)
    assert image.returncode == 0, image.stderr
    assert image.stdout.strip() == compose["services"]["gateway"]["image"]

    [mount_script] = HEREDOC.findall(step("envoy --mode validate on the rendered config, inside the image")["run"])
    mount = subprocess.run([sys.executable, "-", str(out / "compose.yaml")], input=mount_script, capture_output=True,
                           text=True, timeout=60)
    assert mount.returncode == 0, mount.stderr
    source, target, config = mount.stdout.split()
    assert Path(source) == out and (Path(source) / Path(config).relative_to(target)).is_file()
    assert Path(config).name == "envoy.yaml"
