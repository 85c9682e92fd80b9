"""Inspect each plugin module, decide whether the gateway can run it, and stage what it loads."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Plugin, Project
from .errors import PluginError


@dataclass
class PluginCheck:
    """One plugin: what its module is and what the chosen gateway makes of it."""

    plugin: Plugin
    info: Any  # wasm.ModuleInfo
    compat: Any  # wasm.Compatibility
    served: bytes = b""

    @property
    def served_sha256(self) -> str:
        return hashlib.sha256(self.served).hexdigest()

    def staged_name(self) -> str:
        """Content-addressed: a new build gets a new file next to the old one."""
        return f"{self.plugin.name}-{self.served_sha256[:16]}.wasm"

    def to_dict(self) -> dict[str, Any]:
        info, compat = self.info, self.compat
        return {
            "name": self.plugin.name,
            "wasm": str(self.plugin.wasm),
            "size": info.size,
            "sha256": info.sha256,
            "abi": info.abi_version,
            "host_functions": list(info.host_functions),
            "flavor": compat.flavor,
            "runnable": compat.runnable,
            "adaptations": list(compat.adaptations),
            "problems": list(compat.problems),
        }


@dataclass
class CheckReport:
    flavor: str
    plugins: list[PluginCheck] = field(default_factory=list)

    @property
    def runnable(self) -> bool:
        return all(p.compat.runnable for p in self.plugins)

    def to_dict(self) -> dict[str, Any]:
        return {"flavor": self.flavor, "runnable": self.runnable, "plugins": [p.to_dict() for p in self.plugins]}


def check_plugin(plugin: Plugin, flavor: str) -> PluginCheck:
    """Read and inspect one module; an unreadable or invalid file raises PluginError."""
    from . import wasm

    info = wasm.inspect_file(plugin.wasm, label=f"plugin {plugin.name!r}")
    return PluginCheck(plugin=plugin, info=info, compat=wasm.check_compatibility(info, flavor))


def check_project(project: Project, flavor: str) -> CheckReport:
    return CheckReport(flavor=flavor, plugins=[check_plugin(p, flavor) for p in project.plugins])


def require_runnable(report: CheckReport) -> None:
    """Stop before anything starts when a plugin cannot run on the chosen gateway."""
    for check in report.plugins:
        if not check.compat.runnable:
            problems = "; ".join(check.compat.problems)
            hint = (
                "this plugin needs the Higress gateway: use `--runtime docker` with gateway.flavor: higress"
                if report.flavor == "envoy"
                else "rebuild the plugin with the Higress wasm-go SDK"
            )
            raise PluginError(f"plugin {check.plugin.name!r} ({check.plugin.wasm}) cannot run on {_flavor_name(report.flavor)}: {problems}", hint)


def _flavor_name(flavor: str) -> str:
    return "stock Envoy" if flavor == "envoy" else "the Higress gateway"


def prepare(check: PluginCheck, flavor: str) -> PluginCheck:
    """Produce the bytes the gateway loads: an ABI-adapted copy on stock Envoy, else the file as is."""
    from . import wasm

    data = check.plugin.wasm.read_bytes()
    check.served = wasm.adapt_for_stock_envoy(data) if flavor == "envoy" else data
    return check


def stage(check: PluginCheck, modules_dir: Path) -> Path:
    """Write the served bytes under their content-addressed name (atomically, once)."""
    modules_dir.mkdir(parents=True, exist_ok=True)
    target = modules_dir / check.staged_name()
    if not target.exists():
        tmp = modules_dir / f".{target.name}.{os.getpid()}"
        tmp.write_bytes(check.served)
        os.replace(tmp, target)
    return target
