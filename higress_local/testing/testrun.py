"""`hlocal test`: start the stack, run the project's smoke tests with pytest against it, stop it."""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Callable, Sequence

from ..config.project import Project
from ..errors import EnvironmentProblem
from ..stack import Stack
from ..system.proc import run_foreground

PLUGIN_MODULE = "higress_local.testing.pytest_plugin"


def require_pytest() -> None:
    """pytest is not a dependency of hlocal: say how to install it when it is missing."""
    if find_spec("pytest") is None:
        raise EnvironmentProblem(f"pytest is not installed in hlocal's environment ({sys.executable})",
                                 f"install it there: {sys.executable} -m pip install pytest")


def gives_paths(args: Sequence[str], cwd: Path) -> bool:
    """True when the pytest arguments name a test path (a non-option that exists)."""
    return any(not arg.startswith("-") and (cwd / arg.split("::")[0]).exists() for arg in args)


def pytest_argv(project: Project, args: Sequence[str], cwd: Path) -> list[str]:
    """pytest on the running stack (--hlocal-attach), on the project's tests/ unless args name paths."""
    argv = [sys.executable, "-m", "pytest", "--hlocal-file", str(project.file), "--hlocal-attach"]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        argv += ["-p", PLUGIN_MODULE]  # entry points are off: load the plugin by name
    argv += list(args)
    if not gives_paths(args, cwd):
        tests = project.root / "tests"
        argv.append(str(tests if tests.is_dir() else project.root))
    return argv


def run_smoke_tests(project: Project, args: Sequence[str], *, runtime: str | None, keep: bool, timeout: float,
                    echo: Callable[[str], None]) -> int:
    """Up (or reuse) the stack, run pytest attached to it, stop what was started; pytest's exit status."""
    cwd = Path.cwd()
    with Stack(project, runtime=runtime, keep=keep, timeout=timeout, echo=echo) as stack:
        if stack.reused:  # the stack has said so already (Stack.start)
            echo(f"hlocal: running pytest against {stack.url}")
        else:
            echo(f"hlocal: {project.name} is up on the {stack.runtime_name} runtime at {stack.url}; running pytest")
        code = run_foreground(pytest_argv(project, args, cwd), cwd=cwd)
    if keep or stack.reused:
        echo(f"hlocal: {project.name} left running at {stack.url} (stop it with `hlocal down`)")
    else:
        echo(f"hlocal: stopped {project.name}")
    return code
