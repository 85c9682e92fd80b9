"""`hlocal config`: the configuration as hlocal resolved it (variables expanded, defaults filled in,
paths absolute, command-line overrides applied)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..config.models import Project


def resolved_config(project: Project, runtime: str, why: str) -> dict[str, Any]:
    """A plain document of `project`; `runtime` is what `up` would run (and `why`)."""
    doc = _plain(dataclasses.asdict(project))
    doc.pop("state_root", None)
    doc.pop("port_option", None)  # shown as gateway.port, which it set
    doc["file"] = str(project.file)
    doc["state_dir"] = str(project.state_dir)
    doc["runtime"] = {"configured": project.runtime, "resolved": runtime, "why": why}
    return doc


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value
