"""The one interface both runtimes implement, and the reports they return."""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..agent.control import stop_agent
from ..config.project import Project
from ..state import StackState, StateRead
from ..system.wait import raise_if_interrupted
from . import stage as staging


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

    def up(self, project: Project, *, recreate: bool = False, timeout: float = 60.0,
           found: StateRead | None = None) -> UpResult:
        """Start the stack and return once it is ready; leave nothing running on failure.

        The sequence both runtimes share; the hooks below are what differs. `found`: state.json as
        the caller has already read it (the Stack handle), so it is not read a second time."""
        started = time.monotonic()
        flavor = self._preflight(project)
        existing = staging.existing_state(project, recreate, found)
        if existing is not None and existing.ready and not recreate and self._running(project, existing):
            return UpResult(state=existing, already_running=True)
        # A fresh start renews run/, where the reload agent listens: an agent left by the stack before
        # (a restart, a stack that died) would serve on beside the next one; stop it first.
        stop_agent(project.state_dir)
        self._clear(project, existing)
        plan = self._plan(project, flavor)
        state = plan.state
        state.save(project.state_dir)
        try:
            notes = self._launch(project, plan, timeout)
            raise_if_interrupted()  # a Ctrl-C swallowed during an import still stops `up`
        except BaseException:
            self._teardown(project, state)
            StackState.remove(project.state_dir)
            raise
        plan.files.commit()
        state.ready = True
        state.ready_seconds = time.monotonic() - started
        state.save(project.state_dir)
        return UpResult(state=state, seconds=state.ready_seconds, notes=notes)

    # -- the hooks of `up`, in the order it calls them ----------------------------
    @abc.abstractmethod
    def _preflight(self, project: Project) -> str:
        """Refuse early what this runtime cannot run; return the gateway flavor."""

    @abc.abstractmethod
    def _running(self, project: Project, state: StackState) -> bool:
        """Whether every component of a ready stack still runs (then `up` has nothing to do)."""

    @abc.abstractmethod
    def _clear(self, project: Project, existing: StackState | None) -> None:
        """Stop what a stale, partly dead or --recreate'd stack left, and remove its state."""

    @abc.abstractmethod
    def _plan(self, project: Project, flavor: str) -> "staging.Plan":
        """Check the plugins and write every file the stack runs from."""

    @abc.abstractmethod
    def _launch(self, project: Project, plan: "staging.Plan", timeout: float) -> list[str]:
        """Start every component and wait until ready; return notes for the summary."""

    @abc.abstractmethod
    def _teardown(self, project: Project, state: StackState) -> None:
        """After a failed start: stop whatever the launch started (the state is removed after)."""

    @abc.abstractmethod
    def down(self, project: Project, state: StackState | None) -> list[str]:
        """Stop everything of the stack (`state`: as read; None when there is none or it is unreadable,
        and the stack's marker or labels find the rest); return what was stopped (empty when nothing ran)."""

    @abc.abstractmethod
    def status(self, project: Project, found: StateRead) -> StackStatus:
        """Describe every component, including dead ones (`found`: state.json as read, even unreadable)."""

    @abc.abstractmethod
    def status_of(self, project: Project, state: StackState) -> StackStatus:
        """As status, for a state the caller has already read (no second read of state.json)."""

    @abc.abstractmethod
    def gateway_output(self, project: Project) -> tuple[Any, int]:
        """The gateway's output as a LogWatch source, and the position of its end right now."""

    def restart_gateway(self, project: Project, state: StackState, timeout: float) -> UpResult:
        """Where in-place swapping is impossible: start the stack afresh (`state`: as read by the caller)."""
        return self.up(project, recreate=True, timeout=timeout, found=StateRead(state))

    @abc.abstractmethod
    def logs(
        self, project: Project, state: StackState | None, *, service: str | None, plugin_only: bool,
        follow: bool, tail: int | None,
        since: float | None = None, timestamps: bool = False, prefix: bool | None = None,
    ) -> Iterator[str]:
        """Yield log lines of the gateway and/or backend, merged in time order (`state`: as read, or None)."""
