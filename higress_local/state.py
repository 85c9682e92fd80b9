"""What a running stack is made of, kept in .hlocal/<name>/state.json so any shell can find it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


@dataclass
class PluginState:
    """The module a plugin filter was given, as the gateway sees it."""

    name: str
    source: str  # the user's wasm file
    sha256: str  # of the user's file
    abi: str | None
    served: str  # the file the gateway loads (an adapted copy on stock Envoy)
    served_sha256: str
    adaptations: list[str] = field(default_factory=list)
    config_sha256: str = ""
    version: str = ""  # the ECDS version_info: which module + config is live
    source_stat: list[int] = field(default_factory=list)  # [size, mtime_ns] of `source` when it was read


@dataclass
class ComponentState:
    """One process (native) or container (docker) of the stack."""

    name: str
    pid: int | None = None
    start_ticks: int | None = None
    status_file: str | None = None
    log_file: str | None = None
    ports: dict[str, int] = field(default_factory=dict)


@dataclass
class StackState:
    """Everything `status`, `logs`, `probe` and `down` need, written by `up`."""

    name: str
    runtime: str
    flavor: str
    config_file: str
    started: float
    gateway_port: int
    admin_port: int
    backend_port: int
    control_port: int
    ready: bool = False
    ready_seconds: float | None = None
    components: dict[str, ComponentState] = field(default_factory=dict)
    plugins: list[PluginState] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{STATE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, directory / STATE_FILE)

    @classmethod
    def load(cls, directory: Path) -> "StackState | None":
        path = directory / STATE_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a torn or foreign file: treat as no state; `down` cleans up by scanning
        doc["components"] = {k: ComponentState(**v) for k, v in doc.get("components", {}).items()}
        doc["plugins"] = [PluginState(**p) for p in doc.get("plugins", [])]
        return cls(**doc)

    @staticmethod
    def remove(directory: Path) -> None:
        try:
            (directory / STATE_FILE).unlink()
        except FileNotFoundError:
            pass
