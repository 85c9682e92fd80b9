"""When the collector attaches the taps to a sample, and how many requests the taps did not show."""

from __future__ import annotations

from collections import deque
from .tapstream import SAMPLE_SUFFIXES, AdminTap

# A sampling level is taken above SAMPLE_ABOVE requests/s per stream it records (1, then 16: above
# 100 and 1,600 requests/s) over the last RISE_S (new streams or access-log lines, whichever is more:
# the taps show a request first), and left again below SAMPLE_BELOW per stream recorded over the last
# RATE_S seconds. So the collector records at most ~100 requests a second (the ring keeps 500), and
# its cost stays bounded however fast the gateway goes. Interactive work is far below: every request.
SAMPLE_ABOVE = 100.0
SAMPLE_BELOW = 40.0
RISE_S = 0.5
RATE_S = 3.0
SEEN_IDS = 20_000  # request ids the taps showed, kept to tell which access-log lines were not captured


class Sampling:
    def __init__(self, tap: AdminTap) -> None:
        self.tap = tap
        self.rates: deque = deque()  # (time, requests seen then)
        self.new_streams = 0  # streams that began since the last observe()
        self.not_captured = 0  # requests in the access log whose request id the taps never showed
        self.seen_ids: dict[str, None] = {}  # the request ids the taps showed, oldest first (bounded)

    def saw(self, request_id: str | None) -> None:
        """The taps showed this request's headers."""
        if request_id:
            self.seen_ids[request_id] = None
            while len(self.seen_ids) > SEEN_IDS:
                del self.seen_ids[next(iter(self.seen_ids))]

    def observe(self, now: float, fresh: list[str | None]) -> None:
        """Attach the taps to a sample above SAMPLE_ABOVE requests a second, to all below SAMPLE_BELOW;
        count the requests the taps did not show. `fresh`: the request ids (None: a line without one)
        of the access-log lines appended since the collector started (the access log has every
        request; its line comes at the stream's end, long after the taps showed its request headers)."""
        self.not_captured += sum(1 for rid in fresh if rid is not None and rid not in self.seen_ids)
        self.rates.append((now, max(len(fresh), self.new_streams)))
        self.new_streams = 0
        while self.rates and self.rates[0][0] < now - RATE_S:
            self.rates.popleft()
        rising = sum(n for when, n in self.rates if when >= now - RISE_S) / RISE_S
        overall = sum(n for _, n in self.rates) / RATE_S
        self.tap.sample(level_suffix(rising, overall, self.tap.suffix))


def level_suffix(rising: float, overall: float, current: str | None) -> str | None:
    """The sampling level for these request rates: up at once, down only once the rate fell well below."""
    levels = (None, *SAMPLE_SUFFIXES)
    level = up = levels.index(current)
    while up + 1 < len(levels) and rising > SAMPLE_ABOVE * 16 ** up:
        up += 1
    if up > level:
        return levels[up]
    while level > 0 and overall < SAMPLE_BELOW * 16 ** (level - 1) and rising <= SAMPLE_ABOVE * 16 ** (level - 1):
        level -= 1
    return levels[level]
