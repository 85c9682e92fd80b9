"""`up` and `down` take the stack's lock in stack.py, before anything else happens."""

from __future__ import annotations

import contextlib
import os

from click.testing import CliRunner

from higress_local.cli.main import main
from higress_local.config.project import load_project
from higress_local.runtime.lock import stack_lock
from higress_local.stack import down_stack


def test_up_waits_for_the_stack_lock_and_gives_up_at_its_timeout(tmp_path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: lock-test\n")
    project = load_project(tmp_path)
    with stack_lock(project.state_dir, "test"):
        result = CliRunner().invoke(main, ["-f", str(tmp_path), "up", "--timeout", "0.3"])
    assert result.exit_code == 3, result.output
    assert "stack 'lock-test' is busy: `hlocal test`" in result.output
    assert not (project.state_dir / "state.json").exists()  # nothing started while it waited


def test_down_runs_once_the_holder_lets_go(tmp_path) -> None:
    (tmp_path / "hlocal.yaml").write_text("name: lock-test\n")
    project = load_project(tmp_path)
    holder = contextlib.ExitStack()
    holder.enter_context(stack_lock(project.state_dir, "test"))
    waited: list[str] = []

    def told(message: str) -> None:
        waited.append(message)
        holder.close()  # `down` said it waits: now let it in

    try:
        stopped = down_stack(project, "native", clean=True, echo=told)
    finally:
        holder.close()
    assert waited == [f"waiting for `hlocal test` (pid {os.getpid()}) to finish with stack 'lock-test' …"]
    assert stopped == []
    assert not project.state_dir.exists()  # --clean removed the folder, under the lock
