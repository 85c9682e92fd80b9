"""Stack: a running hlocal stack as a plain context manager (start or attach on enter, stop on exit).

    with Stack.from_file("hlocal.yaml") as stack:
        stack.session().get("/api/x")

The pytest plugin (`testing/pytest_plugin.py`) and `hlocal test` are built on it; the CLI's `status`,
`logs` and `down` use `Stack.resolve` (state.json read once, handed down to the runtime).
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .config.project import Project, apply_overrides, load_project, parse_rules
from .errors import ConfigError, EnvironmentProblem
from .settings import settings
from .state import StackState, StateRead
from .errors import HlocalError
from .gatewaylog.classify import LogWatch
from .gatewaylog.logs import plugin_lines, reassemble
from .mock.client import MockClient
from .probe.exchanges import GatewaySession, UpstreamRequest
from .probe.mockservice import MockService
from .probe.observe import plugin_crashes_of
from .probe.send import send_request
from .runtime import (check_running, choose_runtime_name as choose, open_running, require_running as running,
                      resolve_flavor as resolve, runtime_for_state as for_state, select_runtime as select)
from .runtime.converge import up_converging
from .runtime.lock import stack_lock
from .runtime.reload import reload_stack as reload
from .system.ownfiles import remove_tree


class Stack:
    """One stack of a project: started here (and stopped again), or attached to a running one.

    A stack that was already running when this one started is reused and left running, as with
    `attach`: only what this object started is stopped.
    """

    def __init__(self, project: Project, *, runtime: str | None = None, attach: bool = False,
                 keep: bool = False, timeout: float | None = None, echo: Callable[[str], None] | None = None,
                 remove_state: bool = False) -> None:
        self.project = project
        self.remove_state = remove_state  # a session's own stack: its .hlocal/<name>/ goes with it
        self.runtime_override = runtime
        self.attach = attach
        self.keep = keep
        # HLOCAL_UP_TIMEOUT: as for `hlocal up` (a slow or busy machine compiles large modules slowly).
        self.timeout = timeout if timeout is not None else settings().up_timeout
        self.echo = echo or (lambda _message: None)
        self.owned = False  # True while this object is responsible for stopping the stack
        self.reused = False  # it was already running: attached to it instead of starting it
        self._runtime: Any = None
        self._state: StackState | None = None
        self.found: StateRead | None = None  # state.json as `resolve` read it (None: not resolved)

    @classmethod
    def from_file(cls, path: str | Path | None = None, runtime: str | None = None, attach: bool = False,
                  keep: bool = False, *, name: str | None = None, port: int | None = None, **kwargs: Any) -> "Stack":
        """A Stack for the hlocal.yaml at `path` (a file or its folder; default: the nearest one from the
        current folder up); `name`/`port` override the file's, as `hlocal up --name/--port` do."""
        return cls(load_project(path, name=name, port=port), runtime=runtime, attach=attach, keep=keep, **kwargs)

    @classmethod
    def for_session(cls, path: str | Path | None = None, runtime: str | None = None, *, tag: str = "",
                    **kwargs: Any) -> "Stack":
        """A stack of its own for one test session: the project's stack when `hlocal up` already runs it
        (reused, left running), else `<name>-<tag><random>` on a free port, so two sessions of one
        project (two shells, or pytest-xdist workers) never share or fight over a stack."""
        project = load_project(path)
        if _running(project):
            return cls(project, runtime=runtime, **kwargs)
        return cls(apply_overrides(project, name=unique_name(project.name, tag), port=0), runtime=runtime,
                   remove_state=True, **kwargs)

    @classmethod
    def resolve(cls, project: Project, runtime: str | None = None) -> "Stack":
        """The project's stack as it stands, for one command: state.json read once (an unreadable one
        kept with its error) and, on first use, the runtime that started it, else the configured one
        (`runtime`: --runtime). Starts nothing."""
        stack = cls(project, runtime=runtime)
        stack.found = StackState.read(project.state_dir)
        return stack

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def start(self) -> "Stack":
        """Start the stack (or attach to it) and wait until ready; on any failure stop what was started."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if self.attach:
            running = open_running(self.project)
            self._state, self._runtime = running.state, running.runtime
            return
        found = StackState.read(self.project.state_dir)  # once: the choice and `up` share it
        self._runtime = select_runtime(self.project, self.runtime_override, echo=self.echo, found=found)
        self.owned = True  # from here on a half-started stack is ours to clean up
        result = self._runtime.up(self.project, timeout=self.timeout, found=found)
        if result.already_running:
            self.owned, self.reused = False, True
            self.echo(f"{self.project.name} was already running ({result.state.runtime}); "
                      f"using it and leaving it running")
        self._state = result.state

    def close(self) -> list[str]:
        """Stop the stack unless it is kept, attached to, or was already running; return what stopped."""
        if self.keep:
            self.owned = False
            return []
        return self.stop()

    def stop(self) -> list[str]:
        """Stop the stack if this object started it (even half-way); idempotent."""
        if not self.owned:
            return []
        self.owned = False
        found = StackState.read(self.project.state_dir)  # as `up` left it, even half-way
        runtime = self._runtime or for_state(self.project, self.runtime_override, found)
        stopped = runtime.down(self.project, found.state)
        if self.remove_state:
            remove_tree(self.project.state_dir)
        return stopped

    # -- where it is -------------------------------------------------------------
    @property
    def state(self) -> StackState:
        """What the running stack is made of (ports, plugins, runtime)."""
        if self._state is None:
            raise EnvironmentProblem(f"stack {self.project.name!r} is not started",
                                     "use `with Stack.from_file(...) as stack:` or call stack.start()")
        return self._state

    @property
    def started(self) -> bool:
        return self._state is not None

    @property
    def runtime_name(self) -> str:
        return self.state.runtime

    @property
    def url(self) -> str:
        """The gateway's base URL, e.g. http://127.0.0.1:10000."""
        return self.state.gateway_url

    @property
    def admin_url(self) -> str:
        return self.state.admin_url

    def __repr__(self) -> str:
        where = f"{self._state.runtime}, {self._state.gateway_url}" if self._state else "not started"
        return f"Stack({self.project.name!r}, {where})"

    # -- looking at it (a resolved stack: what `resolve` read; else state.json now) ------------------
    def _read(self) -> StateRead:
        return self.found if self.found is not None else StackState.read(self.project.state_dir)

    def status(self) -> Any:
        """Every component, including dead ones (a runtime.base.StackStatus)."""
        found = self._read()
        return self._runtime_or_state(found).status(self.project, found)

    def plugin_crashes(self) -> dict[str, list[str]]:
        """Each plugin's VM traps so far (probe.observe.plugin_crashes_of), through the stack's runtime."""
        return plugin_crashes_of(self.project, self._runtime_or_state(self._read()))

    def logs(self, **options: Any) -> Iterator[str]:
        """The stack's log lines (options as runtime.base.Runtime.logs takes them)."""
        found = self._read()
        return self._runtime_or_state(found).logs(self.project, found.state, **options)

    def down(self, runtime: Any = None) -> list[str]:
        """Stop everything of the stack, whoever started it, on `runtime` (default: the one that started it);
        the caller holds the stack's lock."""
        found = self._read()
        return (runtime or self._runtime_or_state(found)).down(self.project, found.state)

    # -- talking to it -------------------------------------------------------------
    def request(self, method: str, path: str, headers: Sequence[tuple[str, str]] = (),
                body: bytes | None = None) -> Any:
        """Send one request (repeated headers go out as separate lines); returns a probe.Exchange whose
        `.upstream` is what the backend received, as the `upstream` fixture gives it (an UpstreamRequest)."""
        exchange = send_request(self.state, method, path, headers, body)
        if exchange.upstream is not None:
            exchange.upstream = UpstreamRequest.from_entry(exchange.upstream)
        return exchange

    def session(self) -> Any:
        """A requests.Session whose relative URLs go to the gateway (an exchanges.GatewaySession)."""
        return GatewaySession(self.url)

    def journal(self) -> Any:
        """A MockClient on the mock backend's control port: journal(), last_seq(), find(), clear()."""
        return MockClient(self.state.control_url, token=self.state.control_token)

    def service(self, name: str) -> Any:
        """A mock service's endpoints (a mockservice.MockService): `.replica(i).journal()`, `.counts()`."""
        return MockService(self.state, name)

    def log_marker(self) -> Any:
        """The gateway output's position now; pass it to plugin_logs_since()."""
        source, position = self._runtime_or_state().gateway_output(self.project)
        return LogWatch(source, [], start=position)

    def plugin_logs_since(self, marker: Any) -> list[str]:
        """The plugins' own log lines written since `marker` was taken (a Go dump's fragments as one line)."""
        marker.poll()
        return plugin_lines(reassemble(marker.lines))

    def _runtime_or_state(self, found: StateRead | None = None) -> Any:
        if self._runtime is None:
            self._runtime = for_state(self.project, self.runtime_override, found)
        return self._runtime

    # -- changing it -------------------------------------------------------------
    @contextlib.contextmanager
    def reconfigure(self, plugin: str | None = None, config: Mapping[str, Any] | None = None,
                    rules: Sequence[Mapping[str, Any]] | None = None) -> Iterator["Stack"]:
        """Swap one plugin's config (and rules, when given) in place; restore the original on exit."""
        original = self.project
        name = plugin or self._only_plugin()
        current = original.plugin(name)
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(f"config for plugin {name!r} must be a mapping, got {type(config).__name__}",
                              "pass config={...} as a dict")
        changed = dataclasses.replace(
            current,
            config=dict(config) if config is not None else current.config,
            rules=parse_rules(list(rules), f"rules for plugin {name!r}") if rules is not None else current.rules,
        )
        self._swap(dataclasses.replace(original, plugins=tuple(changed if p.name == name else p
                                                               for p in original.plugins)), name)
        try:
            yield self
        finally:
            self._swap(original, name)

    def _only_plugin(self) -> str:
        names = [p.name for p in self.project.plugins]
        if len(names) != 1:
            raise ConfigError(f"{self.project.file.name} has {len(names)} plugins; say which to reconfigure",
                              f"pass plugin=... (one of: {', '.join(names) or 'none'})")
        return names[0]

    def _swap(self, project: Project, name: str) -> None:
        result = reload_stack(project, names=(name,), build=False, timeout=self.timeout)
        self._state = result.state or self._state


def unique_name(base: str, tag: str = "") -> str:
    """`base-<tag><6 hex>`, within the 63 characters a stack name may have."""
    import secrets

    suffix = f"-{tag}{secrets.token_hex(3)}"
    return base[:63 - len(suffix)].rstrip("-_") + suffix


def _running(project: Project) -> bool:
    """Whether the project's own stack is up (started by `hlocal up`)."""
    state = StackState.load_or_none(project.state_dir)
    if state is None or not state.ready:
        return False

    try:
        check_running(project, state)
    except HlocalError:
        return False
    return True


# -- What the CLI asks of a project's stack -----------------------------------------------------
# The command line reaches the runtime package only through these (imported on use: `--help` needs none
# of it). Each hands on to the one owner: runtime/ (choice, state), runtime.lock, runtime.reload;
# up, down and reload take the stack's lock here (reload inside runtime.reload, which the agent shares).

def choose_runtime_name(project: Project, override: str | None) -> tuple[str, str]:
    """The runtime `up` would use and one line saying why."""
    return choose(project, override)


def resolve_flavor(project: Project, override: str | None) -> str:
    """The gateway flavor plugins are judged against (gateway.flavor, else the chosen runtime's)."""
    return resolve(project, override)


def select_runtime(project: Project, override: str | None, echo: Callable[[str], None] | None = None,
                   found: StateRead | None = None) -> Any:
    """The runtime for `up`; refuses when the stack already runs on the other one."""
    return select(project, override, echo=echo, found=found)


def require_running(project: Project) -> StackState:
    """The running stack's state; NotRunning when it is not up."""
    return running(project)


def up_stack(project: Project, override: str | None, *, recreate: bool, timeout: float,
             echo: Callable[[str], None], build: Callable[[], None] = lambda: None,
             starting: Callable[[str], Any] = lambda _runtime: contextlib.nullcontext()) -> tuple[Any, Any]:
    """`hlocal up` under the stack's lock: `build` stale plugins first (`auto` inspects the built modules to
    pick the runtime), then start on the chosen runtime inside `starting(runtime name)` (the CLI's progress
    line); on a running stack, apply what changed instead. Returns the runtime and its UpResult."""
    with stack_lock(project.state_dir, "up", wait=timeout, echo=echo):
        build()
        # On a running stack `up` applies what changed (runtime/converge.py), a switch of runtime too.
        found = StackState.read(project.state_dir)  # once, under the lock: the choice and `up` share it
        runtime = select(project, override, echo=echo, switch=True, found=found)
        with starting(runtime.name):
            return runtime, up_converging(runtime, project, recreate=recreate, timeout=timeout, found=found)


def down_stack(project: Project, override: str | None = None, *, clean: bool = False,
               echo: Callable[[str], None] | None = None, started: Any = None) -> list[str]:
    """`hlocal down` under the stack's lock: stop everything of it on `started` (the runtime that started
    it, when the caller holds it) or the one its state names; `clean` also removes .hlocal/<name>/."""
    with stack_lock(project.state_dir, "down", echo=echo):
        stopped = Stack.resolve(project, override).down(started)  # state.json read once, under the lock
        if clean:
            # Under the lock: no `up` can be writing there. The lock file goes too; its fd stays valid.
            remove_tree(project.state_dir)
    return stopped


def reload_stack(project: Project, **kwargs: Any) -> Any:
    """`hlocal reload`: build what is stale and swap every changed piece into the running gateway."""
    return reload(project, **kwargs)
