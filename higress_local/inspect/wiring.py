"""What a runtime needs to run the inspector: the Layout field and the collector's command line."""

from __future__ import annotations

import sys
from pathlib import Path

from ..state import StackState
from . import collector
from .view import store_dir

COMPONENT = "inspector"  # the collector's name among a stack's processes (status, logs, down)


def prepare(state_dir: Path) -> None:
    """Make the ring's folder before the collector starts."""
    store_dir(state_dir).mkdir(parents=True, exist_ok=True)


def collector_argv(state_dir: Path, state: StackState, token_file: str | None, ring: int = collector.DEFAULT_RING,
                   output: Path | None = None) -> list[str]:
    """The collector process: attaches to the taps over Envoy's admin port, reads Envoy's log,
    the access log and every mock's journal; keeps the newest `ring` records under
    .hlocal/<name>/inspect/requests. `output`: one file holding both logs (docker: the gateway
    container's output, where each source skips the other's lines)."""
    layout = state.require_layout()
    gateway_log = output or Path(state_dir) / "logs" / "gateway.log"
    mocks = {"backend": state.control_url}
    for plan in state.services.values():
        mocks.update(plan.journals())  # a replicated service: each replica's journal as `name[i]`
    clusters = {plan.cluster: name for name, plan in state.services.items()}
    return [sys.executable, *collector.argv(
        admin=f"127.0.0.1:{state.admin_port}", store=str(store_dir(state_dir)),
        gateway_log=str(gateway_log), access_log=str(output or layout.access_log),
        mocks=mocks, clusters=clusters, token_file=token_file, ring=ring, body_bytes=layout.inspect_body_bytes)]
