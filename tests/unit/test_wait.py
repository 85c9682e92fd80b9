"""Deadline polling on a fake clock: no real time passes."""

from __future__ import annotations

import pytest

from higress_local.errors import EXIT_TIMEOUT, WaitTimeout
from higress_local.system.wait import Deadline, NotYet


class FakeTime:
    """A clock that only moves when slept on, and a log of every sleep."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.start = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    @property
    def elapsed(self) -> float:
        return self.now - self.start


class Flaky:
    """Fails `failures` times with `error`, then returns `value`."""

    def __init__(self, failures: int, value: object = "ready", error: type[BaseException] = NotYet) -> None:
        self.failures = failures
        self.value = value
        self.error = error
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"attempt {self.calls}: status 503")
        return self.value


def deadline(fake: FakeTime, timeout: float = 10.0, interval: float = 0.5, **kwargs) -> Deadline:
    return Deadline(timeout=timeout, interval=interval, clock=fake.clock, sleep=fake.sleep, **kwargs)


def test_returns_at_once_without_sleeping_when_the_check_passes():
    fake = FakeTime()
    assert deadline(fake).until(lambda: 42, what="x") == 42
    assert fake.sleeps == []


def test_returns_the_value_after_n_not_yets():
    fake = FakeTime()
    check = Flaky(3, value={"ok": True})
    assert deadline(fake).until(check, what="the gateway") == {"ok": True}
    assert check.calls == 4
    assert fake.sleeps == [0.5, 0.5, 0.5]


def test_oserror_counts_as_not_yet_by_default():
    fake = FakeTime()
    check = Flaky(2, error=ConnectionRefusedError)
    assert deadline(fake).until(check, what="x") == "ready"
    assert check.calls == 3


def test_times_out_naming_what_was_awaited_and_the_last_failure():
    fake = FakeTime()
    check = Flaky(10**6)
    with pytest.raises(WaitTimeout) as info:
        deadline(fake, timeout=2.0, interval=0.5).until(check, what="http://127.0.0.1:10000/ to answer 200",
                                                         hint="see .hlocal/demo/logs/gateway.log")
    error = info.value
    last = check.calls
    assert error.message == (f"timed out after 2 s waiting for http://127.0.0.1:10000/ to answer 200 "
                             f"(last: attempt {last}: status 503)")
    assert error.hint == "see .hlocal/demo/logs/gateway.log"
    assert error.exit_code == EXIT_TIMEOUT
    assert fake.elapsed == pytest.approx(2.0)
    assert last == 5  # at 0, 0.5, 1.0, 1.5 and 2.0


def test_a_failure_without_text_is_not_quoted():
    fake = FakeTime()

    def never():
        raise NotYet()

    with pytest.raises(WaitTimeout) as info:
        deadline(fake, timeout=1.0).until(never, what="the backend")
    assert info.value.message == "timed out after 1 s waiting for the backend"


def test_other_exceptions_propagate_at_once():
    fake = FakeTime()
    check = Flaky(5, error=KeyError)
    with pytest.raises(KeyError):
        deadline(fake).until(check, what="x")
    assert check.calls == 1
    assert fake.sleeps == []


def test_retry_on_can_be_narrowed():
    fake = FakeTime()
    check = Flaky(1, error=OSError)
    with pytest.raises(OSError):
        deadline(fake, retry_on=(NotYet,)).until(check, what="x")
    assert check.calls == 1


def test_retry_on_can_be_widened():
    fake = FakeTime()
    check = Flaky(2, error=ValueError)
    assert deadline(fake, retry_on=(NotYet, ValueError)).until(check, what="x") == "ready"


@pytest.mark.parametrize(("timeout", "interval"), [(1.0, 0.3), (2.5, 1.0), (0.05, 0.5), (10.0, 3.0)])
def test_sleeps_never_run_past_the_deadline(timeout, interval):
    fake = FakeTime()
    with pytest.raises(WaitTimeout):
        deadline(fake, timeout=timeout, interval=interval).until(Flaky(10**6), what="x")
    assert all(s <= interval for s in fake.sleeps)
    assert sum(fake.sleeps) == pytest.approx(timeout)
    assert fake.elapsed <= timeout + 1e-9


def test_the_deadline_is_wall_clock_so_a_slow_check_uses_up_the_time():
    fake = FakeTime()
    calls = []

    def slow():
        calls.append(fake.now)
        fake.now += 3.0  # the check itself takes 3 s
        raise NotYet("slow")

    with pytest.raises(WaitTimeout):
        deadline(fake, timeout=5.0, interval=1.0).until(slow, what="x")
    # 1000: check (to 1003), sleep 1; 1004: check (to 1007) is past 1005: give up without sleeping.
    assert calls == [1000.0, 1004.0]
    assert fake.sleeps == [1.0]


def test_a_zero_timeout_tries_exactly_once():
    fake = FakeTime()
    check = Flaky(1)
    with pytest.raises(WaitTimeout):
        deadline(fake, timeout=0).until(check, what="x")
    assert check.calls == 1
    assert fake.sleeps == []


def test_the_last_attempt_may_still_succeed_at_the_deadline():
    fake = FakeTime()
    check = Flaky(4)  # fails at 0, 0.5, 1.0, 1.5; passes at 2.0 (the deadline)
    assert deadline(fake, timeout=2.0, interval=0.5).until(check, what="x") == "ready"
    assert check.calls == 5
