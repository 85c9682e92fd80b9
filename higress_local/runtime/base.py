"""The one interface both runtimes implement, and the reports they return."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..config.project import Project
from ..state import StackState


@dataclass
class ComponentStatus:
    """One process or container as `status` shows it."""

    name: str
    state: str  # running | exited | missing
    pid: int | None = None
    ports: dict[str, int] = field(default_factory=dict)
    uptime_seconds: float | None = None
    exit_code: int | None = None
    detail: str = ""
    health: str | None = None
    restarts: int | None = None


@dataclass
class StackStatus:
    """The whole stack as `status` shows it."""

    name: str
    runtime: str
    running: bool
    flavor: str | None = None
    gateway_url: str | None = None
    admin_url: str | None = None
    components: list[ComponentStatus] = field(default_factory=list)
    plugins: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""  # e.g. an unreadable state: what is wrong beyond the components

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


@dataclass
class UpResult:
    """What `up` prints: where to send requests and what was loaded."""

    state: StackState
    already_running: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)  # `up` on a running stack: what it changed, and how


class Runtime(abc.ABC):
    """Starts, inspects and stops one stack."""

    name: str = ""

    @abc.abstractmethod
    def up(self, project: Project, *, recreate: bool = False, timeout: float = 60.0) -> UpResult:
        """Start the stack and return once it is ready; leave nothing running on failure."""

    @abc.abstractmethod
    def down(self, project: Project) -> list[str]:
        """Stop everything of the stack; return what was stopped (empty when nothing ran)."""

    @abc.abstractmethod
    def status(self, project: Project) -> StackStatus:
        """Describe every component, including dead ones."""

    @abc.abstractmethod
    def status_of(self, project: Project, state: StackState) -> StackStatus:
        """As status, for a state the caller has already read (no second read of state.json)."""

    @abc.abstractmethod
    def gateway_output(self, project: Project) -> tuple[Any, int]:
        """The gateway's output as a LogWatch source, and the position of its end right now."""

    def restart_gateway(self, project: Project, timeout: float) -> UpResult:
        """Where in-place swapping is impossible: start the stack afresh."""
        return self.up(project, recreate=True, timeout=timeout)

    @abc.abstractmethod
    def logs(
        self, project: Project, *, service: str | None, plugin_only: bool, follow: bool, tail: int | None,
        since: float | None = None, timestamps: bool = False, prefix: bool | None = None,
    ) -> Iterator[str]:
        """Yield log lines of the gateway and/or backend, merged in time order."""
