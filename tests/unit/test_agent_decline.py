"""The reload agent's own checks, before it touches anything: whose request, which code, which settings."""

from __future__ import annotations

import os
from pathlib import Path

from higress_local.runtime.agent import Agent


def _request(agent: Agent, **changes) -> dict:
    return {"op": "reload", "package": agent.package, "env": dict(os.environ), **changes}


def test_an_agent_serves_only_requests_it_would_answer_as_the_cli(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    assert agent._decline(_request(agent)) is None
    assert "another hlocal" in agent._decline(_request(agent, package="/elsewhere/higress_local"))
    for key in ("HLOCAL_CACHE_DIR", "DOCKER_HOST"):
        changed = {**os.environ, key: "/somewhere/else"}
        assert "settings" in agent._decline(_request(agent, env=changed)), key
    # The markers and the switch itself are not settings.
    markers = {**os.environ, "HLOCAL_AGENT": "x", "HLOCAL_STACK": "y", "HLOCAL_NO_AGENT": "0"}
    assert agent._decline(_request(agent, env=markers)) is None


def test_an_agent_knows_when_hlocal_s_files_changed(tmp_path: Path) -> None:
    agent = Agent(tmp_path)
    assert agent.sources and not agent.stale()  # it watches the modules it has loaded
    module = tmp_path / "module.py"
    module.write_text("x = 1\n")
    agent.sources[str(module)] = module.stat().st_mtime_ns
    assert not agent.stale()
    os.utime(module, ns=(1, 1))
    assert agent.stale()
    assert "source files changed" in agent._decline(_request(agent)) and agent.stopping
