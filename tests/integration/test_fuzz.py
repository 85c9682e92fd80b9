"""Bounded fuzzing (fixed seeds): the module inspector and adapter, and the Redis relay, take untrusted
input. Every case is refused with a typed error or served; none crashes, hangs or leaks a traceback.
`bench/fuzz.py` runs the same cases by the ten thousand."""

from __future__ import annotations

import pytest

from fuzz_modules import Base, fuzz
from fuzz_relay import fuzz_relay

pytestmark = pytest.mark.slow

SEED = 20261207
MODULE_CASES = 160  # ~0.3 s each: a real 7 MB module is adapted whole unless refused early
RELAY_CASES = 600


def test_mutated_modules_are_adapted_or_refused_with_a_typed_error(sdk_plugin_wasm) -> None:
    base = Base("redisecho.wasm", sdk_plugin_wasm("redisecho").read_bytes())
    report = fuzz(base, SEED, MODULE_CASES)
    assert report.cases == MODULE_CASES
    assert not report.bugs, "\n".join(f"case {i} ({kind}): {outcome}: {detail}" for i, kind, outcome, detail
                                      in report.bugs)
    # Both outcomes occur: the mutations reach past the first checks, and broken files are refused.
    assert report.outcomes["adapted"] > 0 and report.outcomes["refused"] > 0
    # Repeated or reordered sections are refused by the inspector (custom ones may go anywhere).
    for kind in ("truncate", "section-size", "swap-sections", "duplicate-section"):
        assert report.by_kind[kind, "refused"] > 0, kind


def test_the_relay_refuses_malformed_exchanges_and_passes_every_reply_on(tmp_path) -> None:
    report, stderr, died = fuzz_relay(SEED, RELAY_CASES, tmp_path)
    assert died is None, f"the relay exited ({died}):\n{stderr[-2000:]}"
    assert report.cases == RELAY_CASES
    assert not report.problems, "\n".join(f"{side} case {i} ({kind}): {what}" for side, i, kind, what
                                          in report.problems[:20])
    assert "Traceback" not in stderr, stderr[-3000:]
    # Well-formed replies came back (200), malformed ones were failed calls (502) with a reason.
    assert report.outcomes["redis:valid", 200] > 0 and report.outcomes["redis:trailing-bytes", 200] > 0
    assert report.outcomes["redis:truncated", 502] > 0 and report.outcomes["redis:silent", 502] > 0
