"""Re-delivering a watched file whose change event Envoy never saw (fake clock, real files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from higress_local.errors import EnvironmentProblem
from higress_local.runtime.redeliver import Redelivery


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def watched(tmp_path: Path) -> Path:
    path = tmp_path / "ecds" / "p.json"
    path.parent.mkdir()
    path.write_text('{"version": "2"}')
    return path


def test_nothing_happens_while_envoy_attempts_the_update(watched: Path):
    clock = Clock()
    redelivery = Redelivery(clock=clock)
    inode = watched.stat().st_ino
    clock.now += 30  # a slow compile: Envoy attempted the update, it is just not live yet
    redelivery.check("plugin p", watched, baseline_attempts=1, stats={"update_attempt": "2"})
    assert watched.stat().st_ino == inode and redelivery.lines() == []


def test_a_lost_event_is_re_delivered_by_renaming_the_same_bytes(watched: Path):
    clock = Clock()
    redelivery = Redelivery(clock=clock, after=1.0)
    inode = watched.stat().st_ino
    redelivery.check("plugin p", watched, 1, {"update_attempt": "1"})
    assert watched.stat().st_ino == inode  # too early: events take milliseconds, give it a second
    clock.now += 1.5
    redelivery.check("plugin p", watched, 1, {"update_attempt": "1"})
    assert watched.stat().st_ino != inode  # a new file renamed over it: a new IN_MOVED_TO event
    assert watched.read_text() == '{"version": "2"}'
    assert [p for p in os.listdir(watched.parent)] == ["p.json"]  # no temp file left
    assert redelivery.lines() == ["plugin p: its change event was lost; re-delivered the file (1x)"]


def test_renames_that_never_arrive_end_in_an_error_naming_the_restart(watched: Path):
    clock = Clock()
    redelivery = Redelivery(clock=clock, after=1.0, times=2)
    for _ in range(2):
        clock.now += 1.01 * 2
        redelivery.check("plugin p", watched, 0, {})
    clock.now += 10
    with pytest.raises(EnvironmentProblem) as caught:
        redelivery.check("plugin p", watched, 0, {})
    assert "re-delivered 2 times" in caught.value.message
    assert "hlocal reload --restart" in caught.value.hint
