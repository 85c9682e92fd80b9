"""Runs action.yml's steps here, in order, as GitHub's runner would: its `run:` scripts for real under
bash with the step's `env:` and `working-directory:`, the GITHUB_ENV/GITHUB_PATH/GITHUB_OUTPUT files honoured,
and each `uses:` step (its `with:` evaluated) handed to a stand-in the test gives (a fresh venv for setup-python, Go from the dev
extra for setup-go). Expressions are evaluated for the few forms action.yml uses; any other is an error, so a
new form in action.yml makes the test say so instead of running something else.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
NOT_EMPTY = re.compile(r"^inputs\.([\w-]+) != ''$")
BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # GitHub's `shell: bash`


@dataclass
class Run:
    """What a local run of the action did: each step's name and exit status, the files GitHub keeps."""

    root: Path
    steps: list[tuple[str, int | str]] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    path: list[str] = field(default_factory=list)
    failed: bool = False
    logs: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> Path:
        return self.root / "step_summary.md"


class ActionRunner:
    def __init__(self, action: Path, root: Path, inputs: dict[str, str], base_env: dict[str, str],
                 stand_ins: dict[str, Callable[[dict[str, Any], Run], None]], workspace: Path) -> None:
        self.meta = yaml.safe_load(action.read_text(encoding="utf-8"))
        self.action_path = action.parent
        defaults = {k: str(v.get("default", "")) for k, v in self.meta["inputs"].items()}
        unknown = set(inputs) - set(defaults)
        assert not unknown, f"inputs action.yml does not declare: {unknown}"
        self.inputs = {**defaults, **inputs}
        self.run = Run(root=root)
        self.base_env, self.stand_ins, self.workspace = base_env, stand_ins, workspace
        (root / "temp").mkdir(parents=True, exist_ok=True)

    def value(self, expression: str) -> str:
        scope, _, rest = expression.partition(".")
        if scope == "inputs":
            return self.inputs[rest]
        if expression == "github.action_path":
            return str(self.action_path)
        if scope == "steps" and rest.count(".") == 2:
            step_id, outputs, name = rest.split(".")
            assert outputs == "outputs", expression
            return self.run.outputs.get(step_id, {}).get(name, "")
        if expression in ("runner.os", "runner.arch", "github.job", "github.run_id", "github.run_attempt"):
            return {"runner.os": "Linux", "runner.arch": "X64", "github.job": "test"}.get(expression, "1")
        raise AssertionError(f"the local runner does not know the expression {expression!r}")

    def evaluate(self, text: Any) -> str:
        if isinstance(text, bool):  # YAML's true, as an action receives it
            return str(text).lower()
        return EXPRESSION.sub(lambda m: self.value(m.group(1)), str(text))

    def should_run(self, step: dict[str, Any]) -> bool:
        condition = str(step.get("if", "")).strip()
        condition = EXPRESSION.fullmatch(condition).group(1) if EXPRESSION.fullmatch(condition) else condition
        if condition == "always()":
            return True
        if condition == "failure()":
            return self.run.failed
        if NOT_EMPTY.match(condition):
            return not self.run.failed and self.inputs[NOT_EMPTY.match(condition).group(1)] != ""
        assert condition == "", f"the local runner does not know the condition {condition!r}"
        return not self.run.failed

    def run_all(self, timeout: float) -> Run:
        for index, step in enumerate(self.meta["runs"]["steps"]):
            name = step.get("name") or step.get("uses") or f"step {index}"
            if not self.should_run(step):
                self.run.steps.append((name, "skipped"))
            elif "uses" in step:
                inputs = {key: self.evaluate(value) for key, value in step.get("with", {}).items()}
                self.stand_ins[step["uses"].split("@")[0]](inputs, self.run)
                self.run.steps.append((name, "stand-in"))
            else:
                self.run.steps.append((name, self._script(step, name, timeout)))
        return self.run

    def _script(self, step: dict[str, Any], name: str, timeout: float) -> int:
        assert step.get("shell") == "bash", f"{name}: a run step names its shell"
        assert "${{" not in step["run"], f"{name}: a script reads its inputs from env:, never ${{{{ }}}}"
        files = {key: self.run.root / f"{key.lower()}_{len(self.run.steps)}" for key in ("GITHUB_OUTPUT", "GITHUB_ENV",
                                                                                       "GITHUB_PATH")}
        for path in files.values():
            path.touch()
        env = {**self.base_env, **self.run.env, **{k: self.evaluate(v) for k, v in step.get("env", {}).items()},
               **{k: str(v) for k, v in files.items()}, "RUNNER_TEMP": str(self.run.root / "temp"),
               "GITHUB_STEP_SUMMARY": str(self.run.summary), "GITHUB_WORKSPACE": str(self.workspace)}
        env["PATH"] = os.pathsep.join([*self.run.path, env["PATH"]])
        cwd = self.workspace / self.evaluate(step.get("working-directory", "."))
        done = subprocess.run([*BASH, "-c", step["run"]], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)
        self.run.logs[name] = f"$ exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        if step.get("id"):
            self.run.outputs[step["id"]] = read_pairs(files["GITHUB_OUTPUT"])
        self.run.env.update(read_pairs(files["GITHUB_ENV"]))
        self.run.path[:0] = files["GITHUB_PATH"].read_text().split()
        self.run.failed |= done.returncode != 0
        return done.returncode


def read_pairs(path: Path) -> dict[str, str]:
    """NAME=value lines as GITHUB_OUTPUT and GITHUB_ENV take them (the heredoc form is not used by action.yml)."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip():
            assert "<<" not in line.split("=", 1)[0], f"multi-line values are not supported here: {line}"
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs
