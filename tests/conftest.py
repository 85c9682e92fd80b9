"""Shared fixtures: test plugins built from source, the real transformer, projects that clean up."""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plugin_build import DEFAULT_CACHE_DIR, build_plugin  # noqa: E402
from support import Project, kill_processes_mentioning  # noqa: E402

TRANSFORMER = "plugins/transformer/2.0.0/plugin.wasm"


@pytest.fixture(scope="session")
def plugin_wasm() -> Callable[[str], Path]:
    """Build one of tests/plugins/<name> (cached by source hash) and return its .wasm."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_plugin(name, DEFAULT_CACHE_DIR)
        return built[name]

    return get


@pytest.fixture(scope="session")
def transformer_wasm() -> Path:
    """The official Higress transformer plugin from the gpustack-higress-plugins wheel."""
    try:
        source = resources.files("gpustack_higress_plugins") / TRANSFORMER
    except ModuleNotFoundError:
        pytest.fail("gpustack-higress-plugins is not installed (it is in the dev extra: pip install -e '.[dev]')")
    return Path(str(source))


class ProjectFactory:
    """Writes hlocal.yaml projects and, at cleanup, runs `hlocal down` and insists nothing is left."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp = tmp_path_factory
        self.made: list[Project] = []

    def __call__(self, config: dict[str, Any], files: dict[str, Path] | None = None, name: str = "proj") -> Project:
        path = self.tmp.mktemp(name)
        for target, source in (files or {}).items():
            shutil.copyfile(source, path / target)
        config = {"name": config.get("name", f"t-{path.name}".lower().replace("_", "-")), **config}
        project = Project(path=path, config=config)
        project.write()
        self.made.append(project)
        return project

    def cleanup(self) -> None:
        leftovers = []
        for project in self.made:
            project.hlocal("down", timeout=120)
            stray = project.leftovers()
            if stray:
                leftovers.append((project.path, stray))
                kill_processes_mentioning(str(project.path / ".hlocal"))
        assert not leftovers, f"processes left behind after `hlocal down`: {leftovers}"


@pytest.fixture
def make_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectFactory]:
    """A project factory for one test."""
    factory = ProjectFactory(tmp_path_factory)
    yield factory
    factory.cleanup()


@pytest.fixture(scope="module")
def module_projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectFactory]:
    """A project factory whose stacks live for a whole test module."""
    factory = ProjectFactory(tmp_path_factory)
    yield factory
    factory.cleanup()
