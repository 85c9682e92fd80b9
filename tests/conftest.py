"""Shared fixtures: test plugins built from source, the real transformer, projects that clean up."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plugin_build import DEFAULT_CACHE_DIR, build_plugin  # noqa: E402
from support import Project, kill_processes_mentioning, remove_containers  # noqa: E402

TRANSFORMER = "plugins/transformer/2.0.0/plugin.wasm"
# Adapted modules are cached by content; the suite keeps its cache beside the other test caches,
# not in the user's ~/.cache (child hlocal processes inherit this).
# Envoy compiles multi-megabyte modules; on a busy 2-core machine that can take longer than a minute.
os.environ.setdefault("HLOCAL_UP_TIMEOUT", "240")
os.environ.setdefault("HLOCAL_CACHE_DIR", str(Path(__file__).resolve().parent / ".cache" / "hlocal"))
REQUIRE_DOCKER = os.environ.get("HLOCAL_REQUIRE_DOCKER") == "1"


@functools.lru_cache(maxsize=None)
def docker_unavailable() -> str | None:
    """Why the docker tests cannot run here, or None when an engine and Compose v2 answer."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    if info.returncode != 0:
        return f"no Docker engine answers ({(info.stderr.strip().splitlines() or ['?'])[-1]})"
    compose = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    if compose.returncode != 0 or not compose.stdout.strip().lstrip("v").startswith("2"):
        return "Docker Compose v2 is not installed"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Docker tests skip with the reason when no engine answers; with HLOCAL_REQUIRE_DOCKER=1 they fail."""
    if item.get_closest_marker("docker") is None:
        return
    why = docker_unavailable()
    if why is None:
        return
    if REQUIRE_DOCKER:
        pytest.fail(f"HLOCAL_REQUIRE_DOCKER=1 but the docker tests cannot run: {why}", pytrace=False)
    pytest.skip(f"docker tests skipped: {why} (CI sets HLOCAL_REQUIRE_DOCKER=1 and runs them)")


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """hlocal reads HLOCAL_* once (settings.py): each test reads them again, after its own setenv."""
    from higress_local import settings

    settings.reset()
    yield
    settings.reset()


@pytest.fixture(scope="session")
def docker_images() -> dict[str, str]:
    """Local gateway and backend images (built once, reused by tag), exported for hlocal."""
    from docker_images import ensure_test_images

    env = ensure_test_images()
    os.environ.update(env)
    return env


@pytest.fixture(scope="module", params=["native", pytest.param("docker", marks=pytest.mark.docker)])
def runtime(request: pytest.FixtureRequest) -> str:
    """Each runtime in turn: the same scenario must hold on both."""
    if request.param == "docker":
        request.getfixturevalue("docker_images")
    return request.param


@pytest.fixture(scope="session")
def plugin_wasm() -> Callable[[str], Path]:
    """Build one of tests/plugins/<name> (cached by source hash) and return its .wasm."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_plugin(name, DEFAULT_CACHE_DIR)
        return built[name]

    return get


def _builder(unavailable: Callable[[], str | None], build: Callable[[str], Path], what: str) -> Callable[[str], Path]:
    """A memoised `build`, or a skip naming why `what` cannot be built here."""
    why = unavailable()
    if why:
        pytest.skip(f"{what} tests skipped: {why}")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build(name)
        return built[name]

    return get


@pytest.fixture(scope="session")
def sdk_plugin_wasm() -> Callable[[str], Path]:
    """Build one of tests/sdk_plugins/<name> with the real wasm-go SDK (offline module proxy); skip without it."""
    from sdk_build import build_sdk_plugin, goproxy_unavailable

    return _builder(goproxy_unavailable, build_sdk_plugin, "SDK plugin")


@pytest.fixture(scope="session")
def higress_plugin_wasm() -> Callable[[str], Path]:
    """Build one of Higress's own plugins from its source (e.g. ``extensions/transformer``,
    ``mcp-servers/amap-tools``) offline; skip without the source tarball or the module proxy."""
    from higress_build import build_higress_plugin, higress_src_unavailable

    return _builder(higress_src_unavailable, build_higress_plugin, "official Higress plugin")


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

    def __call__(self, config: dict[str, Any], files: dict[str, Path] | None = None, name: str = "proj",
                 runtime: str | None = None) -> Project:
        path = self.tmp.mktemp(name)
        for target, source in (files or {}).items():
            shutil.copyfile(source, path / target)
        # Under pytest-xdist every worker has its own temp root with the same folder names: the worker id
        # keeps stack names (and so docker containers and networks) apart.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "")
        default_name = f"t-{path.name}{'-' + worker if worker else ''}".lower().replace("_", "-")
        config = {"name": config.get("name", default_name), **config}
        if runtime is not None:
            config["runtime"] = runtime
            if runtime == "docker":
                # The Higress image cannot be pulled here: docker tests run stock Envoy images.
                config["gateway"] = {"flavor": "envoy", **config.get("gateway", {})}
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
                remove_containers(project)
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
