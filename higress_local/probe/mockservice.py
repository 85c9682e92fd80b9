"""A running stack's mock service and its endpoints (mock.replicas), each with its own journal:

    stack.service("llm").replica(1).journal().journal()   # what replica 1 received
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..mock.client import MockClient
from ..state import ServiceState, StackState, replica_label


@dataclass(frozen=True)
class Replica:
    """One endpoint of a mock service: the host the gateway (and a plugin's host list) names, its journal."""

    service: str
    index: int
    host: str  # "127.0.0.1:PORT", as proxy_get_upstream_hosts lists it
    control_url: str
    token: str = ""

    @property
    def label(self) -> str:
        """How `hlocal request` and probes name it: `llm[1]`."""
        return replica_label(self.service, self.index)

    def journal(self) -> MockClient:
        """A MockClient on this endpoint's control port: journal(), last_seq(), find(), clear()."""
        return MockClient(self.control_url, token=self.token or None)


class MockService:
    """A mock service of a running stack: one mock, or one per replica."""

    def __init__(self, state: StackState, name: str) -> None:
        plan = state.services.get(name)
        if plan is None:
            known = ", ".join(sorted(state.services)) or "none"
            raise ConfigError(f"stack {state.name!r} has no service {name!r}", f"services: {known}")
        if not plan.journals():
            raise ConfigError(f"service {name!r} is a {plan.how} service, not an hlocal mock: it has no journal",
                              "give it `mock:` in hlocal.yaml to record what it receives")
        self.name = name
        self.replicas = _replicas(plan, state.control_token)

    def replica(self, index: int) -> Replica:
        if not 0 <= index < len(self.replicas):
            raise ConfigError(f"service {self.name!r} has {len(self.replicas)} replica(s); there is no replica {index}",
                              f"replicas are numbered 0 to {len(self.replicas) - 1} (mock.replicas)")
        return self.replicas[index]

    def journal(self) -> MockClient:
        """The journal of a single-mock service (a replicated one has one per replica)."""
        if len(self.replicas) > 1:
            raise ConfigError(f"service {self.name!r} has {len(self.replicas)} replicas, each with its own journal",
                              f"use .replica(i).journal() with i from 0 to {len(self.replicas) - 1}")
        return self.replicas[0].journal()

    def counts(self) -> list[int]:
        """How many requests each replica's journal holds, by index."""
        return [len(r.journal().journal()) for r in self.replicas]


def _replicas(plan: ServiceState, token: str) -> list[Replica]:
    if plan.replicas:
        return [Replica(plan.name, r.index, _host(plan.address, r.port), r.control_url, token) for r in plan.replicas]
    return [Replica(plan.name, 0, _host(plan.address, plan.port), plan.control_url or "", token)]


def _host(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
