"""gateway.inspect: on by default natively, switched by a reload (not a restart), off by a file the collector watches."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from higress_local.config.project import parse_project
from higress_local.inspect.collector import Collector
from higress_local.inspect.store import Store, capture_switched_on, switch_capture
from higress_local.runtime.reload import restart_reasons
from higress_local.runtime.stage import restart_key
from higress_local.state import RestartKey


def _project(gateway: dict):
    return parse_project({"name": "t", "gateway": gateway, "plugins": []}, Path("/tmp/hlocal-test/hlocal.yaml"))


def test_capture_is_on_by_default_natively_and_off_with_docker_unless_set() -> None:
    assert _project({}).gateway.captures("native") and not _project({}).gateway.captures("docker")
    assert not _project({"inspect": False}).gateway.captures("native")
    assert _project({"inspect": True}).gateway.captures("docker")


def test_turning_capture_off_or_on_needs_no_restart_natively_but_does_with_docker() -> None:
    saved = RestartKey(**json.loads(json.dumps(dataclasses.asdict(restart_key(_project({}))))))

    class State:
        def __init__(self, runtime: str) -> None:
            self.runtime, self.restart_key = runtime, saved

    off = _project({"inspect": False})
    assert restart_reasons(off, State("native")) == []  # type: ignore[arg-type]
    assert restart_reasons(off, State("docker")) == ["gateway settings changed (gateway.inspect)"]  # type: ignore[arg-type]
    both = _project({"inspect": False, "log_level": "debug"})
    assert restart_reasons(both, State("native")) == ["gateway settings changed (gateway.log_level)"]  # type: ignore[arg-type]


def test_the_collector_detaches_while_capture_is_switched_off(tmp_path: Path) -> None:
    inspect_dir = tmp_path / "inspect"
    store = Store(inspect_dir / "requests")
    collector = Collector(("127.0.0.1", 9), store, tmp_path / "gateway.log", tmp_path / "access.log", {})
    assert capture_switched_on(inspect_dir) and collector.stats()["mode"] == "all"
    assert switch_capture(inspect_dir, False) and not switch_capture(inspect_dir, False)
    access = tmp_path / "access.log"
    access.write_text('{"request_id":"r1"}\n')
    collector.tick()  # not started: no session, but the switch and the counts are the tick's
    assert not collector.tap.enabled.is_set()
    assert store.capture_stats()["mode"] == "off" and collector.capture.not_captured == 0
    assert switch_capture(inspect_dir, True)
    collector.tick()
    assert collector.tap.enabled.is_set() and collector.stats()["mode"] == "all"
