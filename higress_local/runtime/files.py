"""The one owner of the files a gateway runs from: write, version, swap, verify, roll back, clean up.

Layout of `.hlocal/<name>/` (all 0700/0600, no links followed — see system/ownfiles.py):
  envoy.yaml            bootstrap (read once at start)
  ecds/<plugin>.json    one plugin filter each (watched: a rename swaps it in place)
  xds/routes.json, xds/clusters.json   (watched, same)
  good/                 the last copies Envoy accepted: rollback and repair source
  modules/              content-addressed module copies the ECDS files point at
  backend.json, services/<name>.json   the mocks' stubs
  run/, logs/           supervisor status files and logs (written by runtime/native.py)
Watched files are only ever replaced by rename: Envoy never reads half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..system import ownfiles as safefs
from ..wasm.bridge import bridge_wasm_path

BRIDGE_NAME = "hlocal-bridge.wasm"
WATCHED_DIRS = ("ecds", "xds")
FRESH_DIRS = ("ecds", "xds", "good", "modules", "run", "services")


@dataclass
class Swap:
    """One watched file replaced by a reload, and what it held before (None: it was missing)."""

    path: Path
    old_text: str | None
    new_text: str


class GatewayFiles:
    """Everything under one stack's state folder that the gateway or the mocks read."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir
        self.pending: list[Swap] = []  # swapped since the last commit: what an interruption rolls back

    # -- places ----------------------------------------------------------------
    @property
    def bootstrap(self) -> Path:
        return self.root / "envoy.yaml"

    @property
    def backend_config(self) -> Path:
        return self.root / "backend.json"

    @property
    def modules_dir(self) -> Path:
        return self.root / "modules"

    def ecds(self, file_name: str) -> Path:
        return self.root / "ecds" / file_name

    def xds(self, file_name: str) -> Path:
        return self.root / "xds" / file_name

    def service_config(self, name: str) -> Path:
        return self.root / "services" / f"{name}.json"

    def log(self, component: str) -> Path:
        return self.root / "logs" / f"{component}.log"

    def status_file(self, component: str) -> Path:
        return self.root / "run" / f"{component}.json"

    # -- a fresh start -----------------------------------------------------------
    def guard(self) -> None:
        """Refuse a state folder that is, or contains, a symbolic link (before touching anything)."""
        safefs.check_dir(self.root.parent)
        safefs.guard_tree(self.root)

    def reset(self) -> None:
        """Old rendered files and module copies must not leak into a new stack."""
        self.guard()
        safefs.ensure_dir(self.root)
        os.chmod(self.root, safefs.DIR_MODE)
        for sub in FRESH_DIRS:
            safefs.remove_tree(self.root / sub)
            safefs.ensure_dir(self.root / sub)
        safefs.ensure_dir(self.root / "logs")

    # -- writing -----------------------------------------------------------------
    def write_json(self, path: Path, doc: Any) -> Path:
        safefs.write_text(path, json.dumps(doc, indent=2))
        return path

    def write_text(self, path: Path, text: str) -> Path:
        safefs.write_text(path, text)
        return path

    def put_module(self, file_name: str, data: bytes) -> Path:
        """A module copy under its content-addressed name (written once; a partial copy never stays)."""
        target = self.modules_dir / file_name
        if not target.is_file() or target.stat().st_size != len(data):
            safefs.write_private(target, data)
        return target

    def put_bridge(self) -> Path:
        return self.put_module(BRIDGE_NAME, bridge_wasm_path().read_bytes())

    def write_stubs(self, path: Path, stubs: Iterable[Any]) -> Path:
        return self.write_json(path, {"stubs": list(stubs)})

    def read_stubs(self, path: Path) -> list[Any] | None:
        try:
            data = safefs.read_private(path)
            return None if data is None else json.loads(data).get("stubs", [])
        except ValueError:
            return None

    # -- swapping watched files ----------------------------------------------------
    def read_text(self, path: Path) -> str | None:
        data = safefs.read_private(path)
        return None if data is None else data.decode("utf-8", errors="replace")

    def swap(self, path: Path, new_text: str) -> Swap | None:
        """Replace a watched file by rename; None when it already holds exactly that."""
        old = self.read_text(path)
        if old == new_text:
            return None
        safefs.write_text(path, new_text)
        swap = Swap(path=path, old_text=old, new_text=new_text)
        self.pending.append(swap)
        return swap

    def roll_back(self, swaps: Iterable[Swap]) -> None:
        """Put back what Envoy last accepted (a rejected file would be retried on the next directory change)."""
        for swap in swaps:
            good = self._good_copy(swap.path)
            text = self.read_text(good) if good.exists() else swap.old_text
            if text is not None:
                safefs.write_text(swap.path, text)
        self.pending = [p for p in self.pending if p not in swaps]
        self.remove_unreferenced_modules()

    def commit(self) -> None:
        """Remember every watched file as accepted: the source for rollback and repair."""
        self.pending = []
        for sub in WATCHED_DIRS:
            folder = self.root / sub
            if not safefs.check_dir(folder):
                continue
            for path in sorted(folder.glob("*.json")):
                text = self.read_text(path)
                if text is not None:
                    safefs.write_text(self._good_copy(path), text)

    def restore_missing(self, expected: Iterable[Path]) -> list[Path]:
        """Watched files deleted behind hlocal's back come back from their accepted copies."""
        restored = []
        for path in expected:
            if path.exists():
                continue
            good = self._good_copy(path)
            text = self.read_text(good) if good.exists() else None
            if text is not None:
                safefs.write_text(path, text)
                restored.append(path)
        return restored

    def _good_copy(self, path: Path) -> Path:
        return self.root / "good" / f"{path.parent.name}--{path.name}"

    # -- cleaning up ---------------------------------------------------------------
    def remove_unreferenced_modules(self) -> list[str]:
        """Module copies no ECDS file (current or accepted) points at any more; the bridge stays."""
        referenced = {BRIDGE_NAME}
        sources = [*(self.root / "ecds").glob("*.json"), *(self.root / "good").glob("ecds--*.json")]
        for ecds in sources:
            try:
                doc = json.loads(self.read_text(ecds) or "{}")
            except ValueError:
                continue
            for resource in doc.get("resources", []):
                try:
                    filename = resource["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
                except (KeyError, TypeError):
                    continue
                referenced.add(Path(filename).name)
        removed = []
        for module in self.modules_dir.glob("*.wasm"):
            if module.name not in referenced:
                module.unlink()
                removed.append(module.name)
        for tmp in self.modules_dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)  # a copy interrupted by a full disk or a kill
        return removed
