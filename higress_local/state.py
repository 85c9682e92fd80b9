"""What a running stack is made of, kept in .hlocal/<name>/state.json so any shell can find it.

The file is typed and versioned: `StackState.load` checks every field against its annotation and
raises `CorruptState` (never a TypeError) for a torn, foreign or hand-edited file. Callers that must
act without a readable state (`down`, `status`) find the stack's processes through `system/orphans.py`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Union

from .errors import CorruptState
from .render.envoy import Layout
from .system.ownfiles import read_private, write_private

STATE_FILE = "state.json"
STATE_VERSION = 2


def local_url(port: int, scheme: str = "http") -> str:
    """Where this machine reaches a port of the stack: every one is published on the loopback address."""
    return f"{scheme}://127.0.0.1:{port}"


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
class ReplicaState:
    """One of a mock service's replicas (mock.replicas): a mock process with its own journal."""

    index: int
    component: str  # svc-<name>-<index>
    port: int  # where the gateway reaches it (on `address` of its service)
    control_port: int  # its journal/stubs API on 127.0.0.1

    @property
    def control_url(self) -> str:
        return local_url(self.control_port)


@dataclass
class ServiceState:
    """One service a plugin calls, as the running stack provides it."""

    name: str
    kind: str
    how: str  # mock | redis | url | image
    component: str  # process or compose service name
    cluster: str
    address: str  # as the gateway reaches it
    port: int
    control_port: int | None = None  # a mock's journal/stubs API on 127.0.0.1
    host_port: int | None = None  # native: what it listens on; docker: the published port (redis)
    config_file: str | None = None
    # mock.replicas > 1 or mock.metrics: one mock per replica (then address/port name replica 0's and
    # control_port is None: each replica has its own); empty for a single mock
    replicas: list[ReplicaState] = field(default_factory=list)

    @property
    def control_url(self) -> str | None:
        return local_url(self.control_port) if self.control_port else None

    def components(self) -> list[str]:
        """The processes (containers) that run this service."""
        return [r.component for r in self.replicas] or [self.component]

    def journals(self) -> dict[str, str]:
        """Each mock journal of the service by label: `name`, or `name[i]` per replica -> control URL."""
        if self.replicas:
            return {replica_label(self.name, r.index): r.control_url for r in self.replicas}
        return {self.name: self.control_url} if self.how == "mock" and self.control_url else {}


def replica_label(service: str, index: int) -> str:
    return f"{service}[{index}]"


def service_of(label: str) -> str:
    """The service a journal label (`name` or `name[i]`) belongs to."""
    return label.split("[", 1)[0]


@dataclass
class RestartKey:
    """What only a restart can change: the listener, the filter chain, images, services."""

    gateway: dict[str, Any]
    chain: list[str]
    services: list[dict[str, Any]]
    backend_image: str | None


@dataclass
class StackState:
    """Everything `status`, `logs`, `probe`, `reload` and `down` need, written by `up`."""

    name: str
    runtime: str
    flavor: str
    config_file: str
    started: float
    gateway_port: int
    admin_port: int
    backend_port: int
    control_port: int
    version: int = STATE_VERSION
    ready: bool = False
    ready_seconds: float | None = None
    components: dict[str, ComponentState] = field(default_factory=dict)
    plugins: list[PluginState] = field(default_factory=list)
    services: dict[str, ServiceState] = field(default_factory=dict)
    layout: Layout | None = None
    restart_key: RestartKey | None = None
    compose_file: str | None = None  # docker
    compose_project: str | None = None  # docker
    control_token: str = ""  # the mocks' control API token (the file is readable by the user only)
    tls_port: int | None = None  # gateway.tls: the https listener
    tls_cert: str | None = None  # gateway.tls: its certificate on this machine (what a client trusts)

    @property
    def https_url(self) -> str | None:
        return local_url(self.tls_port, "https") if self.tls_port else None

    @property
    def gateway_url(self) -> str:
        return local_url(self.gateway_port)

    @property
    def admin_url(self) -> str:
        return local_url(self.admin_port)

    @property
    def control_url(self) -> str:
        return local_url(self.control_port)

    def require_layout(self) -> Layout:
        if self.layout is None:
            raise CorruptState(f"the state of stack {self.name!r} has no rendered layout",
                               "restart it with `hlocal up --recreate`")
        return self.layout

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def save(self, directory: Path) -> None:
        write_private(directory / STATE_FILE, self.to_json().encode())

    @classmethod
    def from_json(cls, text: str, where: str = STATE_FILE) -> "StackState":
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise CorruptState(f"{where} is not valid JSON ({exc})", _CORRUPT_HINT) from None
        if not isinstance(doc, dict):
            raise CorruptState(f"{where} holds {type(doc).__name__}, not a stack state", _CORRUPT_HINT)
        if doc.get("version") != STATE_VERSION:
            raise CorruptState(f"{where} was written by another hlocal version (state version "
                               f"{doc.get('version')!r}, this one reads {STATE_VERSION})", _CORRUPT_HINT)
        return _build(cls, doc, where)

    @classmethod
    def load(cls, directory: Path) -> "StackState | None":
        """The stack's state; None when there is none; CorruptState when it cannot be read."""
        data = read_private(directory / STATE_FILE)
        if data is None:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptState(f"{directory / STATE_FILE} is not UTF-8 text", _CORRUPT_HINT) from None
        return cls.from_json(text, str(directory / STATE_FILE))

    @classmethod
    def load_or_none(cls, directory: Path) -> "StackState | None":
        """For callers that only look (e.g. runtime choice): a corrupt state counts as none."""
        try:
            return cls.load(directory)
        except CorruptState:
            return None

    @classmethod
    def read(cls, directory: Path) -> "StateRead":
        """The stack's state read once for one command, an unreadable one kept with its error."""
        try:
            return StateRead(cls.load(directory))
        except CorruptState as exc:
            return StateRead(None, exc)

    @staticmethod
    def remove(directory: Path) -> None:
        try:
            (directory / STATE_FILE).unlink()
        except FileNotFoundError:
            pass


@dataclass(frozen=True)
class StateRead:
    """state.json as one command read it: the state (None: there is none, or it is unreadable) and,
    when unreadable, why. Passed down so that nothing below reads the file again."""

    state: StackState | None
    problem: CorruptState | None = None


_CORRUPT_HINT = ("`hlocal down` stops whatever of the stack still runs and removes the state; "
                 "`hlocal up --recreate` starts afresh")


@functools.cache
def _shape(cls: type) -> tuple[dict[str, Any], dict[str, dataclasses.Field]]:
    """A state dataclass's field types and fields (resolving the hints is most of a load's time)."""
    return typing.get_type_hints(cls), {f.name: f for f in dataclasses.fields(cls)}


def _build(cls: type, doc: Any, where: str) -> Any:
    """Construct dataclass `cls` from a JSON object, checking each field's type; CorruptState otherwise."""
    if not isinstance(doc, dict):
        raise CorruptState(f"{where}: expected an object, found {type(doc).__name__}", _CORRUPT_HINT)
    hints, fields = _shape(cls)
    unknown = sorted(set(doc) - set(fields))
    if unknown:
        raise CorruptState(f"{where}: unknown field {unknown[0]!r}", _CORRUPT_HINT)
    values = {}
    for name, spec in fields.items():
        if name not in doc:
            if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
                raise CorruptState(f"{where}: missing field {name!r}", _CORRUPT_HINT)
            continue
        values[name] = _value(hints[name], doc[name], f"{where}: {name}")
    return cls(**values)


def _value(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:  # Optional[X]: X's own message says what is wrong
            return _value(options[0], value, where)
        for option in options:
            try:
                return _value(option, value, where)
            except CorruptState:
                continue
        raise CorruptState(f"{where}: {value!r} is not a {hint}", _CORRUPT_HINT)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise CorruptState(f"{where}: expected a list", _CORRUPT_HINT)
        item = args[0] if args else Any
        return [_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise CorruptState(f"{where}: expected an object", _CORRUPT_HINT)
        item = args[1] if len(args) == 2 else Any
        return {k: _value(item, v, f"{where}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str, bool) and isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value
    if hint is list or hint is dict:
        if isinstance(value, hint):
            return value
    raise CorruptState(f"{where}: {value!r} is not a {getattr(hint, '__name__', hint)}", _CORRUPT_HINT)
